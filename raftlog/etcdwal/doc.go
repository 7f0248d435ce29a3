// Package etcdwal implements raftlog.WAL on the real disk with
// go.etcd.io/etcd/server/v3/storage/wal: one directory of etcd WAL segment
// files shared by every raft group on the broker, so one Append costs one
// fdatasync however many groups it carries.
//
// Layout (see docs/storage-wal.md): every record is one raftpb.Entry whose
// Index is a synthetic, strictly increasing sequence number and whose Data
// is a one-byte kind (record or checkpoint image) followed by the record. A
// checkpoint is an image entry at index k followed by an etcd snapshot
// record at k-1, so a reopen at that snapshot reads the image first; WAL
// files wholly before it are then deleted.
//
// etcdwal is the IO edge: it does file IO and etcd's wal starts a goroutine
// to preallocate segments, so the simulator uses raftlog/memwal instead.
// It must never import engine, netwire, sim, cmd or raftlog/memwal.
package etcdwal

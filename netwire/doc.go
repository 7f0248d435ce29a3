// Package netwire is the Kafka protocol front door: a TCP listener, 4-byte
// size framing, request headers, in-order pipelined responses per
// connection, and encoding and decoding through franz-go's kmsg. It hands
// typed requests to a Handler and writes back what the Handler answers.
//
// netwire knows no raft and no disk: it must never import raftlog.
package netwire

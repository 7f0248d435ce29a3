// Package netwire is the Kafka protocol front door: a TCP listener, 4-byte
// size framing, request headers, in-order pipelined responses per
// connection, and encoding and decoding through franz-go's kmsg. It hands
// typed requests to a Handler and writes back what the Handler answers.
// ApiVersions is answered here, from the versions table the caller passes
// in Config.Versions.
//
// netwire lives at the edge: it owns goroutines (a reader and a writer per
// connection), sockets and the wall clock (accept back-off). It knows no
// raft and no disk: it must never import raftlog, engine, sim or cmd.
//
// Files: server.go (Server, Config, Handler, accept loop, Close and
// Shutdown), conn.go (per-connection reader and writer), frame.go (framing,
// request header, the one parse path readRequest, response encoding),
// api_versions.go (the ApiVersions answer).
package netwire

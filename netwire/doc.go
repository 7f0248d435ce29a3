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
// Security lives here too: a Server serves any number of named listeners
// (Kafka's listeners), each PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
// TLS is crypto/tls (1.2+), with certificates reloadable from their files
// and optional client certificates whose subject is the principal; SASL
// (PLAIN, SCRAM-SHA-256/512 through github.com/xdg-go/scram) is answered
// by the connection's reader before any request reaches the Handler. The
// listener's name and the connection's principal reach the Handler in
// ConnInfo, with every request.
//
// Files: server.go (Server, Config, Handler, accept loop, Close and
// Shutdown), conn.go (per-connection reader and writer, the gate that
// keeps unauthenticated requests from the Handler), frame.go (framing,
// request header, the one parse path readRequest, response encoding),
// api_versions.go (the ApiVersions answer), listener.go (listeners,
// security protocols, TLS configuration and certificate reload),
// sasl.go (SaslHandshake, SaslAuthenticate and the mechanisms).
package netwire

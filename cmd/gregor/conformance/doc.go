// Package conformance is Gregor's differential conformance harness
// against Apache Kafka (issue 14). It has no code outside its tests: the
// scripts in cmd/gregor/testdata/conformance/*.txt send kmsg requests,
// one per step, and compare the normalised responses with Kafka's.
//
// Two modes:
//
//   - go test ./cmd/gregor/conformance (part of `make test`): every script
//     against an in-process Gregor broker alone, compared with the Kafka
//     answers recorded in the scripts. A step where Gregor differs from
//     Kafka carries differs=(reason) and Gregor's own answer after
//     Kafka's; docs/compatibility.md lists them.
//   - make conformance (go test ./cmd/gregor/conformance -kafka): the same
//     scripts against a real Kafka broker (built from Maven Central jars
//     by cmd/gregor/testdata/kafka/pom.xml on first use) and Gregor side
//     by side, printing per API matched / different / only-in-Kafka; with
//     -rewrite it records Kafka's answers as the expected blocks.
//
// It lives under cmd/gregor because it starts brokers (engine/runtime) and
// a JVM: cmd may import everything, netwire and engine must not import it.
package conformance

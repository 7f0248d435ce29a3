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
// What the comparison normalises away (normalise_test.go, fieldRules):
// throttle times; cluster and topic ids (kept: zero or set); hosts and
// ports; error messages (kept: null or not, since clients test for null);
// leader epochs, coordinator epochs (DescribeProducers: the leader epoch
// of the coordinator's partition) and the features epoch (kept: -1);
// broker-assigned log append times and transaction start times (kept:
// -1); producer ids (kept: -1); DescribeConfigs documentation (kept: null
// or not); member ids, each distinct one a broker answers
// becoming <member-N> in the order that broker first gave it, so who leads
// and who is who still compare. Coordinator node ids and generations are
// compared as they are (both brokers are node 1; both count generations
// from 1); in three-broker scripts (# targets: brokers=3) partition
// leaders and the controller become <node> and replica lists are sorted.
// Arrays the protocol leaves unordered are sorted. A step's own
// ignore=(Path) replaces a field with <ignored>. Values that differ per
// broker and a later request needs (member id, generation, producer id and
// epoch) are kept per broker with save= and written back as "$name".
//
// It lives under cmd/gregor because it starts brokers (engine/runtime) and
// a JVM: cmd may import everything, netwire and engine must not import it.
package conformance

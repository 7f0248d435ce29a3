package main

// benchCmd measures a Kafka-compatible cluster (to be written).
var benchCmd = notImplemented("bench")

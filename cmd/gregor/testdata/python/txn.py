"""txn.py: the librdkafka side of cmd/gregor's transactions test.

    python txn.py BROKERS TOPIC

A transactional producer (confluent-kafka, librdkafka underneath) runs
three transactions of ten messages over TOPIC: committed, aborted,
committed. A consumer at read_committed then reads TOPIC from the
beginning until it has twenty values, and half a second longer. Prints one
JSON summary line on stdout (the values it read, sorted; errors); the Go
test checks it.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer

WAIT_S = 60


def main(brokers, topic):
    summary = {"committed": [], "errors": [], "librdkafka": __import__("confluent_kafka").libversion()[0]}
    p = Producer({"bootstrap.servers": brokers, "transactional.id": "gregor-librdkafka-txn",
                  "client.id": "gregor-librdkafka-txn-test"})
    p.init_transactions(WAIT_S)
    for prefix in ("c", "a", "d"):
        p.begin_transaction()
        for i in range(10):
            p.produce(topic, key=f"k{i}", value=f"{prefix}{i}")
        if prefix == "a":
            p.abort_transaction(WAIT_S)
        else:
            p.commit_transaction(WAIT_S)

    c = Consumer({"bootstrap.servers": brokers, "group.id": "gregor-librdkafka-txn-reader",
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    seen, deadline, done_at = [], time.monotonic() + WAIT_S, None
    while time.monotonic() < deadline and (done_at is None or time.monotonic() < done_at):
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            summary["errors"].append(str(m.error()))
            continue
        seen.append(m.value().decode())
        if len(seen) >= 20 and done_at is None:
            done_at = time.monotonic() + 0.5
    c.close()
    if len(seen) < 20:
        summary["errors"].append(f"read {len(seen)} of 20 values in {WAIT_S} s")
    summary["committed"] = sorted(seen)
    return summary


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python txn.py BROKERS TOPIC", file=sys.stderr)
        sys.exit(2)
    try:
        s = main(sys.argv[1], sys.argv[2])
    except KafkaException as e:
        s = {"committed": [], "errors": [str(e)]}
    print(json.dumps(s))
    sys.exit(1 if s["errors"] else 0)

package gregor;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java client's transactional producer: initTransactions(), then three
 * transactions of ten records each over TOPIC's partitions, committed,
 * aborted, committed; then a read_committed consumer and a
 * read_uncommitted one read TOPIC from the start. Prints one JSON summary
 * line (what each read); the Go test checks it. Exits 1 if a step threw.
 *
 * Usage: java -jar gregor-java-client.jar txn BOOTSTRAP_SERVERS TOPIC
 */
final class TxnCheck {
    static final Duration WAIT = Duration.ofSeconds(60);

    private TxnCheck() {}

    static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: java -jar gregor-java-client.jar txn BOOTSTRAP_SERVERS TOPIC");
            System.exit(2);
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        String step = "start";
        String topic = args[2];
        try {
            Properties pp = new Properties();
            pp.put("bootstrap.servers", args[1]);
            pp.put("transactional.id", "gregor-java-txn");
            pp.put("client.id", "gregor-java-txn");
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                step = "initTransactions";
                p.initTransactions();
                String[] prefixes = {"c", "a", "d"};
                for (String prefix : prefixes) {
                    step = "transaction " + prefix;
                    p.beginTransaction();
                    for (int i = 0; i < 10; i++) {
                        p.send(new ProducerRecord<>(topic, "k" + i, prefix + i)).get();
                    }
                    if (prefix.equals("a")) {
                        p.abortTransaction();
                    } else {
                        p.commitTransaction();
                    }
                }
            }
            step = "read_committed";
            summary.put("committed", read(args[1], topic, "read_committed", 20));
            step = "read_uncommitted";
            summary.put("uncommitted", read(args[1], topic, "read_uncommitted", 30));
        } catch (Throwable e) {
            summary.put("exception", step + ": " + e);
            e.printStackTrace();
        }
        System.out.println(JavaClientCheck.json(summary));
        System.exit(summary.containsKey("exception") ? 1 : 0);
    }

    /** Reads TOPIC from the start at ISOLATION until WANT records or WAIT; the values, sorted. */
    static List<String> read(String bootstrap, String topic, String isolation, int want) {
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("isolation.level", isolation);
        cp.put("client.id", "gregor-java-txn-" + isolation);
        List<String> all = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo pi : c.partitionsFor(topic)) {
                tps.add(new TopicPartition(topic, pi.partition()));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (all.size() < want && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    all.add(r.value());
                }
            }
            // A little longer: anything more would be a record that must not be seen.
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                all.add(r.value());
            }
        }
        List<String> sorted = new ArrayList<>(all);
        sorted.sort(null);
        return sorted;
    }
}

package gregor;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * The Java client's consumer group: a KafkaConsumer in GROUP that
 * subscribe()s to TOPIC and commitSync()s after every poll that returned
 * records, until it has consumed WANT records (or a minute has passed).
 * PROTOCOL is the consumer's group.protocol: "classic" (JoinGroup,
 * SyncGroup, Heartbeat) or "consumer" (KIP-848, ConsumerGroupHeartbeat).
 * Prints one JSON summary line on stdout (what it consumed, its
 * assignment, the committed offsets it reads back with committed()); the
 * Go test checks it. Exits 1 if a step threw or a check failed.
 *
 * Usage: java -jar gregor-java-client.jar group BOOTSTRAP_SERVERS TOPIC GROUP PROTOCOL WANT
 */
final class GroupCheck {
    static final Duration WAIT = Duration.ofSeconds(60);

    private GroupCheck() {}

    static void main(String[] args) {
        if (args.length != 6) {
            System.err.println("usage: java -jar gregor-java-client.jar group BOOTSTRAP_SERVERS TOPIC GROUP PROTOCOL WANT");
            System.exit(2);
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        List<String> problems = new ArrayList<>();
        String step = "start";
        String topic = args[2], group = args[3], protocol = args[4];
        int want = Integer.parseInt(args[5]);
        summary.put("protocol", protocol);

        Properties cp = new Properties();
        cp.put("bootstrap.servers", args[1]);
        cp.put("group.id", group);
        cp.put("group.protocol", protocol);
        cp.put("client.id", "gregor-java-group-" + protocol);
        cp.put("enable.auto.commit", "false");
        cp.put("auto.offset.reset", "earliest");
        cp.put("retry.backoff.ms", "100");
        if (protocol.equals("classic")) {
            // KIP-848 members take their heartbeat interval from the broker.
            cp.put("heartbeat.interval.ms", "500");
        }
        List<Map<String, Object>> consumed = new ArrayList<>();
        Set<Integer> assigned = new TreeSet<>();
        List<String> rebalances = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer =
                 new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
            step = "subscribe";
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                    ps.forEach(tp -> assigned.remove(tp.partition()));
                    rebalances.add("revoked " + ps);
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                    ps.forEach(tp -> assigned.add(tp.partition()));
                    rebalances.add("assigned " + ps);
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> ps) {
                    ps.forEach(tp -> assigned.remove(tp.partition()));
                    rebalances.add("lost " + ps);
                }
            });

            step = "poll";
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (consumed.size() < want && System.nanoTime() < deadline) {
                var records = consumer.poll(Duration.ofMillis(200));
                if (records.isEmpty()) continue;
                for (ConsumerRecord<String, String> r : records) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("partition", r.partition());
                    m.put("offset", r.offset());
                    m.put("value", r.value());
                    consumed.add(m);
                }
                step = "commitSync";
                consumer.commitSync();
                step = "poll";
            }
            if (consumed.size() < want) {
                problems.add("consumed " + consumed.size() + " records in " + WAIT + ", want " + want);
            }
            summary.put("assigned", new ArrayList<>(assigned));
            summary.put("memberGeneration", consumer.groupMetadata().generationId());

            step = "committed";
            Set<TopicPartition> tps = new HashSet<>();
            for (PartitionInfo pi : consumer.partitionsFor(topic)) tps.add(new TopicPartition(topic, pi.partition()));
            Map<String, Long> committed = new TreeMap<>();
            for (var e : consumer.committed(tps, Duration.ofSeconds(30)).entrySet()) {
                OffsetAndMetadata om = e.getValue();
                committed.put(Integer.toString(e.getKey().partition()), om == null ? -1L : om.offset());
            }
            summary.put("committed", committed);
            step = "close";
        } catch (Throwable e) {
            summary.put("exception", step + ": " + e);
            e.printStackTrace();
        }
        summary.put("consumed", consumed);
        summary.put("rebalances", rebalances);
        summary.put("problems", problems);
        System.out.println(JavaClientCheck.json(summary));
        System.exit(summary.containsKey("exception") || !problems.isEmpty() ? 1 : 0);
    }
}

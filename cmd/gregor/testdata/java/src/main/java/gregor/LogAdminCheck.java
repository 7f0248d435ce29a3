package gregor;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java AdminClient's log administration: incrementalAlterConfigs (SET,
 * APPEND, and a bad value that must be refused), describeConfigs with
 * sources, deleteRecords and describeLogDirs. Prints one JSON summary
 * line; the Go test checks it. Exits 1 if a step threw unexpectedly.
 *
 * Usage: java -jar gregor-java-client.jar log-admin BOOTSTRAP_SERVERS TOPIC
 */
final class LogAdminCheck {
    private LogAdminCheck() {}

    static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: java -jar gregor-java-client.jar log-admin BOOTSTRAP_SERVERS TOPIC");
            System.exit(2);
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        String step = "start";
        String topic = args[2];
        Properties ap = new Properties();
        ap.put("bootstrap.servers", args[1]);
        try (Admin admin = Admin.create(ap)) {
            step = "createTopics";
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 3))).all().get();
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);

            step = "incrementalAlterConfigs";
            Collection<AlterConfigOp> ops = List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND));
            admin.incrementalAlterConfigs(Map.of(res, ops)).all().get();

            step = "incrementalAlterConfigs (bad value)";
            try {
                admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("segment.bytes", "tiny"), AlterConfigOp.OpType.SET)))).all().get();
                summary.put("badValue", "accepted");
            } catch (ExecutionException e) {
                summary.put("badValue", e.getCause().getClass().getSimpleName() + ": " + e.getCause().getMessage());
            }

            step = "describeConfigs";
            Config cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
            Map<String, String> dynamic = new LinkedHashMap<>();
            for (ConfigEntry e : cfg.entries()) {
                if (e.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG) {
                    dynamic.put(e.name(), e.value());
                }
            }
            summary.put("topicConfigs", dynamic);

            step = "produce";
            Properties pp = new Properties();
            pp.put("bootstrap.servers", args[1]);
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                for (int i = 0; i < 10; i++) {
                    p.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)).get();
                }
            }

            step = "deleteRecords";
            TopicPartition tp = new TopicPartition(topic, 0);
            long low = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp).get().lowWatermark();
            summary.put("lowWatermark", low);

            step = "describeLogDirs";
            List<Integer> brokers = new ArrayList<>();
            admin.describeCluster().nodes().get().forEach(n -> brokers.add(n.id()));
            int replicas = 0;
            long bytes = 0;
            for (Map<String, LogDirDescription> dirs : admin.describeLogDirs(brokers).allDescriptions().get().values()) {
                for (LogDirDescription d : dirs.values()) {
                    ReplicaInfo ri = d.replicaInfos().get(tp);
                    if (ri != null) {
                        replicas++;
                        bytes += ri.size();
                    }
                }
            }
            summary.put("replicas", replicas);
            summary.put("bytes", bytes);
        } catch (Throwable e) {
            Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            summary.put("exception", step + ": " + c);
            e.printStackTrace();
        }
        System.out.println(JavaClientCheck.json(summary));
        System.exit(summary.containsKey("exception") ? 1 : 0);
    }

    /**
     * Reads partition 0 of a compacted topic from the start to its end
     * offset with the Java consumer (which must step over the cleaner's
     * gaps and empty batches) and prints the latest value of each key, the
     * records read and whether offsets only increased.
     *
     * Usage: java -jar gregor-java-client.jar read-compacted BOOTSTRAP_SERVERS TOPIC
     */
    static void readCompacted(String[] args) {
        Map<String, Object> summary = new LinkedHashMap<>();
        Properties cp = new Properties();
        cp.put("bootstrap.servers", args[1]);
        TopicPartition tp = new TopicPartition(args[2], 0);
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long end = c.endOffsets(List.of(tp)).get(tp);
            Map<String, String> latest = new java.util.TreeMap<>();
            long last = -1, records = 0;
            boolean increasing = true;
            long deadline = System.currentTimeMillis() + 30_000;
            while (c.position(tp) < end && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(java.time.Duration.ofMillis(500))) {
                    increasing &= r.offset() > last;
                    last = r.offset();
                    records++;
                    if (r.value() == null) {
                        latest.remove(r.key());
                    } else {
                        latest.put(r.key(), r.value());
                    }
                }
            }
            summary.put("position", c.position(tp));
            summary.put("end", end);
            summary.put("records", records);
            summary.put("increasing", increasing);
            summary.put("latest", latest);
        } catch (Throwable e) {
            summary.put("exception", e.toString());
            e.printStackTrace();
        }
        System.out.println(JavaClientCheck.json(summary));
        System.exit(summary.containsKey("exception") ? 1 : 0);
    }
}

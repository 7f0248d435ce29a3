package gregor;

import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java client over SASL_SSL with the client.properties gregor dev
 * --secure writes, loaded as-is: Admin createTopics and describeCluster,
 * an idempotent producer (acks=all), a consumer in a group that reads the
 * records back and commits; then Admin with a wrong password in
 * sasl.jaas.config, which must fail. Prints one JSON summary line; exits
 * 1 if a step threw.
 *
 * Usage: java -jar gregor-java-client.jar secure CLIENT_PROPERTIES TOPIC [RECORDS]
 */
final class SecureCheck {
    private SecureCheck() {}

    static void main(String[] args) {
        if (args.length < 3) {
            System.err.println("usage: java -jar gregor-java-client.jar secure CLIENT_PROPERTIES TOPIC [RECORDS]");
            System.exit(2);
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        String step = "load " + args[1];
        String topic = args[2];
        int n = args.length > 3 ? Integer.parseInt(args[3]) : 100;
        try {
            Properties props = new Properties();
            try (Reader r = Files.newBufferedReader(Path.of(args[1]))) {
                props.load(r);
            }
            summary.put("securityProtocol", props.getProperty("security.protocol"));
            summary.put("saslMechanism", props.getProperty("sasl.mechanism"));

            try (Admin admin = Admin.create(props)) {
                step = "createTopics";
                admin.createTopics(List.of(new NewTopic(topic, 3, (short) 3))).all().get();
                summary.put("created", true);
                step = "describeCluster";
                summary.put("clusterId", admin.describeCluster().clusterId().get());
                List<Integer> brokers = new ArrayList<>();
                admin.describeCluster().nodes().get().forEach(node -> brokers.add(node.id()));
                brokers.sort(null);
                summary.put("brokers", brokers);
            }

            step = "produce";
            Properties pp = (Properties) props.clone();
            pp.put("acks", "all");
            pp.put("enable.idempotence", "true");
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                List<Future<?>> sent = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    sent.add(p.send(new ProducerRecord<>(topic, "k" + i, "v" + i)));
                }
                for (Future<?> f : sent) {
                    f.get();
                }
                summary.put("produced", sent.size());
            }

            step = "consume";
            String group = topic + "-group";
            Properties cp = (Properties) props.clone();
            cp.put("group.id", group);
            cp.put("auto.offset.reset", "earliest");
            cp.put("enable.auto.commit", "false");
            Set<String> seen = new HashSet<>();
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
                c.subscribe(List.of(topic));
                long deadline = System.currentTimeMillis() + 30_000;
                while (seen.size() < n && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        seen.add(r.value());
                    }
                }
                step = "commitSync";
                c.commitSync();
            }
            summary.put("consumed", seen.size());

            step = "listConsumerGroupOffsets";
            try (Admin admin = Admin.create(props)) {
                long committed = 0;
                for (Map.Entry<TopicPartition, OffsetAndMetadata> e
                        : admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().entrySet()) {
                    committed += e.getValue().offset();
                }
                summary.put("committed", committed);
            }

            step = "wrong password";
            Properties bad = (Properties) props.clone();
            bad.put("sasl.jaas.config", props.getProperty("sasl.jaas.config").replaceFirst("password=\"[^\"]*\"", "password=\"wrong-password\""));
            bad.put("default.api.timeout.ms", "15000");
            bad.put("request.timeout.ms", "10000");
            try (Admin admin = Admin.create(bad)) {
                admin.describeCluster().clusterId().get();
                summary.put("wrongPassword", "accepted");
            } catch (ExecutionException e) {
                Throwable c = e.getCause() != null ? e.getCause() : e;
                summary.put("wrongPassword", c.getClass().getSimpleName() + ": " + c.getMessage());
            }
        } catch (Throwable e) {
            Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            summary.put("exception", step + ": " + c);
            e.printStackTrace();
        }
        System.out.println(JavaClientCheck.json(summary));
        System.exit(summary.containsKey("exception") ? 1 : 0);
    }
}

package gregor;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.function.Predicate;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java client (kafka-clients) against a Gregor cluster: Admin calls, an
 * idempotent producer, and a consumer using assign()+seek (Gregor has no
 * consumer groups yet). Prints one JSON summary line on stdout; exits 1 if
 * a step threw or a check failed ("exception", "problems").
 *
 * Usage: java -jar gregor-java-client.jar BOOTSTRAP_SERVERS [RECORDS]
 * (or: java -jar gregor-java-client.jar group ..., the consumer-group
 * check in GroupCheck; txn ..., TxnCheck; streams-wordcount ..., the
 * Kafka Streams application StreamsWordCount; connect-worker ..., a Kafka
 * Connect distributed worker, ConnectWorker; mirror-maker ..., MirrorMaker
 * 2, MirrorMaker2; secure ..., SASL_SSL with a client.properties file,
 * SecureCheck)
 */
public final class JavaClientCheck {
    static final Map<String, Object> summary = new LinkedHashMap<>();
    static final List<String> problems = new ArrayList<>();
    static final Duration WAIT = Duration.ofSeconds(30);
    static String step = "start";

    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("group")) {
            GroupCheck.main(args);
            return;
        }
        if (args.length > 0 && args[0].equals("txn")) {
            TxnCheck.main(args);
            return;
        }
        if (args.length > 0 && args[0].equals("log-admin")) {
            LogAdminCheck.main(args);
            return;
        }
        if (args.length > 0 && args[0].equals("read-compacted")) {
            LogAdminCheck.readCompacted(args);
            return;
        }
        if (args.length > 0 && args[0].equals("secure")) {
            SecureCheck.main(args);
            return;
        }
        if (args.length > 0 && args[0].equals("streams-wordcount")) {
            StreamsWordCount.main(args);
            return;
        }
        if (args.length > 0 && args[0].equals("connect-worker")) {
            ConnectWorker.main(args);
            return;
        }
        if (args.length > 0 && args[0].equals("mirror-maker")) {
            MirrorMaker2.main(args);
            return;
        }
        if (args.length < 1) {
            System.err.println("usage: java -jar gregor-java-client.jar BOOTSTRAP_SERVERS [RECORDS]");
            System.exit(2);
        }
        try {
            run(args[0], args.length > 1 ? Integer.parseInt(args[1]) : 1000);
        } catch (Throwable e) {
            Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            summary.put("exception", step + ": " + c);
            e.printStackTrace();
        }
        summary.put("problems", problems);
        System.out.println(json(summary));
        System.exit(summary.containsKey("exception") || !problems.isEmpty() ? 1 : 0);
    }

    static void check(boolean ok, String what) {
        if (!ok) problems.add(step + ": " + what);
    }

    static void run(String seeds, int n) throws Exception {
        String suffix = Long.toString(System.currentTimeMillis(), 36);
        String a = "java-a-" + suffix, b = "java-b-" + suffix;
        Properties common = new Properties();
        common.put("bootstrap.servers", seeds);
        common.put("retry.backoff.ms", "100");

        try (Admin admin = Admin.create(common)) {
            step = "describeCluster";
            DescribeClusterResult dc = admin.describeCluster();
            List<Integer> ids = dc.nodes().get().stream().map(Node::id).sorted().toList();
            summary.put("clusterId", dc.clusterId().get());
            summary.put("brokers", ids);
            summary.put("controller", dc.controller().get().id());
            check(ids.size() >= 3, "want at least 3 brokers, got " + ids);

            step = "createTopics";
            CreateTopicsResult ct = admin.createTopics(List.of(
                new NewTopic(a, 3, (short) 3).configs(Map.of("retention.ms", "3600000")),
                new NewTopic(b, Map.of(0, List.of(ids.get(0), ids.get(1)), 1, List.of(ids.get(1), ids.get(2))))));
            ct.all().get();
            Map<String, Object> created = new LinkedHashMap<>();
            for (String t : List.of(a, b)) {
                ConfigEntry rm = ct.config(t).get().get("retention.ms");
                created.put(t, Map.of("partitions", ct.numPartitions(t).get(),
                    "replicationFactor", ct.replicationFactor(t).get(),
                    "topicId", String.valueOf(ct.topicId(t).get()),
                    "retentionMs", rm == null ? "missing" : rm.value()));
            }
            summary.put("created", created);

            step = "createTopics (expected to fail)";
            String badRF = "java-bad-rf-" + suffix;
            CreateTopicsResult bad = admin.createTopics(List.of(
                new NewTopic(a, 1, (short) 1), new NewTopic(badRF, 1, (short) (ids.size() + 1))));
            summary.put("expectedFailures", Map.of(
                "duplicate", failure(bad.values().get(a)), "replicationFactor", failure(bad.values().get(badRF))));

            step = "describeTopics";
            Map<String, TopicDescription> desc = await("leaders of " + a + ", " + b,
                () -> admin.describeTopics(List.of(a, b)).allTopicNames().get(), JavaClientCheck::allLed);
            summary.put("described", describe(desc));
            Uuid idA = desc.get(a).topicId();
            step = "describeTopics by id";
            summary.put("describedById", await("describeTopics by id",
                () -> admin.describeTopics(TopicCollection.ofTopicIds(List.of(idA))).allTopicIds().get(), x -> true)
                .get(idA).name());

            step = "listTopics";
            await("listTopics to show both topics", () -> admin.listTopics().names().get(),
                names -> names.containsAll(List.of(a, b)));
            summary.put("listed", true);

            step = "describeConfigs";
            ConfigResource topicRes = new ConfigResource(ConfigResource.Type.TOPIC, a);
            ConfigResource brokerRes = new ConfigResource(ConfigResource.Type.BROKER, ids.get(0).toString());
            Map<ConfigResource, Config> cfgs = await("describeConfigs",
                () -> admin.describeConfigs(List.of(topicRes, brokerRes)).all().get(), x -> true);
            ConfigEntry rm = cfgs.get(topicRes).get("retention.ms");
            summary.put("configs", Map.of("retentionMs", rm.value(), "retentionSource", rm.source().name(),
                "brokerId", cfgs.get(brokerRes).get("broker.id").value()));

            step = "createPartitions";
            admin.createPartitions(Map.of(b, NewPartitions.increaseTo(4))).all().get();
            Map<String, TopicDescription> grown = await("4 led partitions of " + b,
                () -> admin.describeTopics(List.of(b)).allTopicNames().get(),
                d -> d.get(b).partitions().size() == 4 && allLed(d));
            summary.put("partitionsAfterCreatePartitions", grown.get(b).partitions().size());

            // Two phases a minute apart in record time, flushed apart, so
            // that forTimestamp(phase2) is the first offset of phase 2.
            step = "produce";
            long phase2 = System.currentTimeMillis(), phase1 = phase2 - 60_000;
            Map<Integer, List<ProducerRecord<String, String>>> sent = new TreeMap<>();
            Map<Integer, Long> phase1Count = new TreeMap<>();
            Properties pp = new Properties();
            pp.putAll(common);
            pp.put("enable.idempotence", "true");
            pp.put("acks", "all");
            pp.put("linger.ms", "5");
            try (KafkaProducer<String, String> producer =
                     new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                List<ProducerRecord<String, String>> recs = new ArrayList<>();
                List<Future<RecordMetadata>> acks = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    if (i == n / 2) producer.flush();
                    long ts = (i < n / 2 ? phase1 : phase2) + i;
                    ProducerRecord<String, String> r = new ProducerRecord<>(a, null, ts, "key-" + (i % 97), "value-" + i);
                    r.headers().add("i", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                    r.headers().add("client", "java".getBytes(StandardCharsets.UTF_8));
                    recs.add(r);
                    acks.add(producer.send(r));
                }
                producer.flush();
                for (int i = 0; i < n; i++) {
                    RecordMetadata md = acks.get(i).get();
                    List<ProducerRecord<String, String>> p = sent.computeIfAbsent(md.partition(), k -> new ArrayList<>());
                    check(md.offset() == p.size(), "record " + i + " acknowledged at " + md + ", want offset " + p.size());
                    p.add(recs.get(i));
                    if (i < n / 2) phase1Count.merge(md.partition(), 1L, Long::sum);
                }
            }
            summary.put("produced", n);

            step = "listOffsets";
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < 3; p++) tps.add(new TopicPartition(a, p));
            Map<String, Object> offsets = new LinkedHashMap<>();
            offsets.put("earliest", listOffsets(admin, tps, OffsetSpec.earliest()));
            offsets.put("latest", listOffsets(admin, tps, OffsetSpec.latest()));
            offsets.put("byTimestamp", listOffsets(admin, tps, OffsetSpec.forTimestamp(phase2)));
            offsets.put("afterLast", listOffsets(admin, tps, OffsetSpec.forTimestamp(phase2 + n + 60_000)));
            summary.put("offsets", offsets);
            for (TopicPartition tp : tps) {
                String p = Integer.toString(tp.partition());
                long count = sent.getOrDefault(tp.partition(), List.of()).size();
                check(get(offsets, "earliest", p) == 0, tp + " earliest " + get(offsets, "earliest", p));
                check(get(offsets, "latest", p) == count, tp + " latest " + get(offsets, "latest", p) + ", " + count + " sent");
                long want = phase1Count.getOrDefault(tp.partition(), 0L) < count ? phase1Count.getOrDefault(tp.partition(), 0L) : -1;
                check(get(offsets, "byTimestamp", p) == want, tp + " byTimestamp " + get(offsets, "byTimestamp", p) + ", want " + want);
                check(get(offsets, "afterLast", p) == -1, tp + " afterLast " + get(offsets, "afterLast", p) + ", want -1");
            }

            step = "consume";
            Properties cp = new Properties();
            cp.putAll(common);
            cp.put("enable.auto.commit", "false");
            try (KafkaConsumer<String, String> consumer =
                     new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
                consumer.assign(tps);
                tps.forEach(tp -> consumer.seek(tp, 0));
                Map<Integer, Integer> got = consume(consumer, sent, n, 0);
                summary.put("consumed", got.values().stream().mapToInt(Integer::intValue).sum());
                // seek into the middle: the first record of phase 2 in each partition
                step = "consume after seek";
                Map<Integer, Integer> from = new HashMap<>();
                int rest = 0;
                for (TopicPartition tp : tps) {
                    int off = phase1Count.getOrDefault(tp.partition(), 0L).intValue();
                    consumer.seek(tp, off);
                    from.put(tp.partition(), off);
                    rest += sent.getOrDefault(tp.partition(), List.of()).size() - off;
                }
                got = consume(consumer, sent, rest, from);
                summary.put("consumedAfterSeek", got.values().stream().mapToInt(Integer::intValue).sum());
            }

            step = "deleteTopics";
            admin.deleteTopics(List.of(a, b)).all().get();
            await("deleted topics to leave listTopics", () -> admin.listTopics().names().get(),
                names -> !names.contains(a) && !names.contains(b));
            summary.put("deleted", true);
        }
    }

    static Map<Integer, Integer> consume(KafkaConsumer<String, String> consumer,
            Map<Integer, List<ProducerRecord<String, String>>> sent, int want, int from) {
        Map<Integer, Integer> start = new HashMap<>();
        sent.keySet().forEach(p -> start.put(p, from));
        return consume(consumer, sent, want, start);
    }

    // consume polls until want records have come back, checking that each
    // partition's records arrive in offset order from its start offset,
    // with the key, value, timestamp and headers that were sent.
    static Map<Integer, Integer> consume(KafkaConsumer<String, String> consumer,
            Map<Integer, List<ProducerRecord<String, String>>> sent, int want, Map<Integer, Integer> start) {
        Map<Integer, Integer> got = new TreeMap<>();
        int total = 0;
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (total < want && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                int i = got.merge(r.partition(), 1, Integer::sum) - 1 + start.getOrDefault(r.partition(), 0);
                total++;
                List<ProducerRecord<String, String>> p = sent.getOrDefault(r.partition(), List.of());
                if (r.offset() != i || i >= p.size()) {
                    check(false, "partition " + r.partition() + ": offset " + r.offset() + ", want " + i);
                    continue;
                }
                ProducerRecord<String, String> s = p.get(i);
                check(s.key().equals(r.key()) && s.value().equals(r.value()) && s.timestamp() == r.timestamp()
                    && headers(s.headers()).equals(headers(r.headers())),
                    "partition " + r.partition() + " offset " + i + ": got " + r + ", sent " + s);
            }
        }
        check(total == want, "consumed " + total + " records, want " + want);
        return got;
    }

    static List<String> headers(Iterable<Header> hs) {
        List<String> out = new ArrayList<>();
        for (Header h : hs) out.add(h.key() + "=" + new String(h.value(), StandardCharsets.UTF_8));
        return out;
    }

    static Map<String, Long> listOffsets(Admin admin, List<TopicPartition> tps, OffsetSpec spec) throws Exception {
        Map<TopicPartition, OffsetSpec> q = new HashMap<>();
        tps.forEach(tp -> q.put(tp, spec));
        Map<TopicPartition, ListOffsetsResultInfo> res = admin.listOffsets(q).all().get();
        Map<String, Long> out = new TreeMap<>();
        res.forEach((tp, info) -> out.put(Integer.toString(tp.partition()), info.offset()));
        return out;
    }

    @SuppressWarnings("unchecked")
    static long get(Map<String, Object> offsets, String kind, String partition) {
        return ((Map<String, Long>) offsets.get(kind)).getOrDefault(partition, -100L);
    }

    static boolean allLed(Map<String, TopicDescription> d) {
        return d.values().stream().flatMap(t -> t.partitions().stream())
            .allMatch(p -> p.leader() != null && !p.isr().isEmpty());
    }

    static Map<String, Object> describe(Map<String, TopicDescription> desc) {
        Map<String, Object> out = new TreeMap<>();
        desc.forEach((name, d) -> {
            List<TopicPartitionInfo> ps = d.partitions();
            out.put(name, Map.of("partitions", ps.size(), "replicationFactor", ps.get(0).replicas().size(),
                "topicId", String.valueOf(d.topicId())));
        });
        return out;
    }

    // failure is the simple name of the exception a future failed with.
    static String failure(KafkaFuture<?> f) throws InterruptedException {
        try {
            f.get();
            return "none";
        } catch (ExecutionException e) {
            return e.getCause().getClass().getSimpleName();
        }
    }

    // await retries get until ok holds, through retriable errors (a topic
    // the answering broker has not heard of yet), for at most WAIT.
    static <T> T await(String what, Callable<T> get, Predicate<T> ok) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        Object last = null;
        while (System.nanoTime() < deadline) {
            try {
                T v = get.call();
                if (ok.test(v)) return v;
                last = v;
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof RetriableException)) throw e;
                last = e.getCause();
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("gave up waiting for " + what + "; last: " + last);
    }

    // json encodes maps, collections, strings, numbers, booleans and null.
    static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof Number || v instanceof Boolean) return v.toString();
        if (v instanceof Map<?, ?> m) {
            List<String> kv = new ArrayList<>();
            m.forEach((k, x) -> kv.add(json(k.toString()) + ":" + json(x)));
            return "{" + String.join(",", kv) + "}";
        }
        if (v instanceof Collection<?> c) {
            return "[" + String.join(",", c.stream().map(JavaClientCheck::json).toList()) + "]";
        }
        StringBuilder sb = new StringBuilder("\"");
        for (char ch : v.toString().toCharArray()) {
            if (ch == '"' || ch == '\\') sb.append('\\').append(ch);
            else if (ch < 0x20) sb.append(String.format("\\u%04x", (int) ch));
            else sb.append(ch);
        }
        return sb.append('"').toString();
    }
}

package gregor;

import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Kafka Streams word count with processing.guarantee=exactly_once_v2: lines
 * from IN (String values) are split into words, grouped by word (a
 * repartition topic), counted (a state store with a changelog topic), and
 * every count is written to OUT (String key, Long value), each update as it
 * happens (no record cache). GUARANTEE (default exactly_once_v2) is there
 * to show that the test catches at_least_once. Runs until it is
 * killed; SIGTERM closes it cleanly. Prints "state NEW->RUNNING" and the
 * like on stdout as the client changes state, and exits 1 if a stream
 * thread dies. streams_test.go kills it mid-stream and checks OUT.
 *
 * Usage: java -jar gregor-java-client.jar streams-wordcount BOOTSTRAP_SERVERS APPLICATION_ID IN OUT STATE_DIR [GUARANTEE]
 */
final class StreamsWordCount {
    private StreamsWordCount() {}

    static void main(String[] args) {
        if (args.length != 6 && args.length != 7) {
            System.err.println("usage: java -jar gregor-java-client.jar streams-wordcount BOOTSTRAP_SERVERS APPLICATION_ID IN OUT STATE_DIR [GUARANTEE]");
            System.exit(2);
        }
        String in = args[3], out = args[4];
        Properties p = new Properties();
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[2]);
        p.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args.length > 6 ? args[6] : StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 3);
        // No record cache: every count goes out as it changes, so a word's
        // committed counts must read 1, 2, 3, ... with no gap or repeat.
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        // Each record is sent at once rather than at the commit (Streams'
        // linger.ms is 100), so a killed instance leaves records of its
        // open transaction in the logs, which must be aborted.
        p.put(StreamsConfig.producerPrefix("linger.ms"), 0);
        // Streams asks to delete what it has consumed of the repartition
        // topic (DeleteRecords) every purge interval, 30 s by default:
        // sooner here, so the test covers it. Gregor has no DeleteRecords;
        // Streams logs the UnsupportedVersionException at debug and goes on.
        p.put(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, 1000);
        // A killed member leaves the group when its session ends; the
        // broker's minimum (6 s) keeps a restart's rebalance short.
        p.put(StreamsConfig.consumerPrefix("session.timeout.ms"), 6000);
        p.put(StreamsConfig.consumerPrefix("heartbeat.interval.ms"), 1000);

        StreamsBuilder b = new StreamsBuilder();
        b.stream(in, Consumed.with(Serdes.String(), Serdes.String()))
            .flatMapValues(line -> Arrays.asList(line.split(" ")))
            .groupBy((k, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
            .count(Materialized.as("counts"))
            .toStream()
            .to(out, Produced.with(Serdes.String(), Serdes.Long()));

        KafkaStreams streams = new KafkaStreams(b.build(), p);
        CountDownLatch done = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            System.out.println("state " + before + "->" + now);
            System.out.flush();
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                done.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            System.out.println("exception " + e);
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close();
            done.countDown();
        }));
        streams.start();
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        streams.close();
        System.exit(streams.state() == KafkaStreams.State.ERROR ? 1 : 0);
    }
}

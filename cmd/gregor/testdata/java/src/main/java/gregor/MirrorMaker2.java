package gregor;

import java.io.IOException;
import java.util.Map;

import org.apache.kafka.connect.mirror.MirrorMaker;

/**
 * MirrorMaker 2 in dedicated mode (what connect-mirror-maker.sh runs): a
 * Connect herder per replication flow, each with the MirrorSourceConnector,
 * MirrorCheckpointConnector and MirrorHeartbeatConnector, from an mm2
 * properties file naming the clusters. Prints "started" on stdout once its
 * herders are started, then runs until it is killed; SIGTERM stops it.
 *
 * Usage: java -jar gregor-java-client.jar mirror-maker MM2_PROPERTIES
 */
final class MirrorMaker2 {
    private MirrorMaker2() {}

    static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: java -jar gregor-java-client.jar mirror-maker MM2_PROPERTIES");
            System.exit(2);
        }
        Map<String, String> props = null;
        try {
            props = ConnectWorker.load(args[1]);
        } catch (IOException e) {
            System.err.println("mirror-maker: " + e);
            System.exit(2);
        }
        MirrorMaker mm = new MirrorMaker(props);
        Runtime.getRuntime().addShutdownHook(new Thread(mm::stop, "mirror-maker-shutdown"));
        mm.start();
        System.out.println("started");
        System.out.flush();
        mm.awaitStop();
    }
}

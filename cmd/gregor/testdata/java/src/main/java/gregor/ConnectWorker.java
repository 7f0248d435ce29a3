package gregor;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.connect.cli.ConnectDistributed;
import org.apache.kafka.connect.runtime.Connect;
import org.apache.kafka.connect.runtime.distributed.DistributedHerder;

/**
 * One Kafka Connect worker in distributed mode, in this JVM: what
 * connect-distributed.sh runs (ConnectDistributed), from a worker
 * properties file. Once its REST server is up it prints "rest URL" on
 * stdout (the listener may be given port 0), then runs until it is killed;
 * SIGTERM stops it cleanly. connect_test.go writes the properties and
 * creates the connectors through the REST API.
 *
 * Usage: java -jar gregor-java-client.jar connect-worker WORKER_PROPERTIES
 */
final class ConnectWorker {
    private ConnectWorker() {}

    static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: java -jar gregor-java-client.jar connect-worker WORKER_PROPERTIES");
            System.exit(2);
        }
        Map<String, String> props = new HashMap<>();
        try {
            props = load(args[1]);
        } catch (IOException e) {
            System.err.println("connect-worker: " + e);
            System.exit(2);
        }
        // startConnect starts the herder and the REST server (and installs
        // Connect's shutdown hook); it exits the JVM if that fails.
        Connect<DistributedHerder> connect = new ConnectDistributed().startConnect(props);
        System.out.println("rest " + connect.rest().advertisedUrl());
        System.out.flush();
        connect.awaitStop();
    }

    static Map<String, String> load(String path) throws IOException {
        Properties p = new Properties();
        try (InputStream in = new FileInputStream(path)) {
            p.load(in);
        }
        Map<String, String> out = new HashMap<>();
        for (String k : p.stringPropertyNames()) {
            out.put(k, p.getProperty(k));
        }
        return out;
    }
}

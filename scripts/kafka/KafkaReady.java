// Readiness probe for scripts/kafka.sh, run as a single-file source program on Kafka's own jars:
//   java -cp '<libs>/*' KafkaReady.java <bootstrap> <timeoutSeconds> [<brokerPid>]
// Polls an admin call (describeCluster) until the broker answers with a node, the broker process
// exits, or the timeout passes. Exit code 0 = ready, 1 = not ready (reason on stderr).
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;

public class KafkaReady {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
    Long pid = args.length > 2 ? Long.valueOf(args[2]) : null;
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
    p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
    p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
    String last = "no answer";
    try (Admin admin = Admin.create(p)) {
      while (System.nanoTime() < deadline) {
        if (pid != null && !ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
          System.err.println("broker process " + pid + " exited before it was ready");
          System.exit(1);
        }
        try {
          var nodes = admin.describeCluster(new DescribeClusterOptions().timeoutMs(3000)).nodes().get(4, TimeUnit.SECONDS);
          // the transaction and group coordinators need the metadata log to be caught up too
          admin.listTopics().names().get(4, TimeUnit.SECONDS);
          if (!nodes.isEmpty()) {
            System.out.println("ready: " + nodes);
            System.exit(0);
          }
        } catch (Exception e) {
          last = e.getClass().getSimpleName() + ": " + e.getMessage();
        }
        Thread.sleep(250);
      }
    }
    System.err.println("broker at " + bootstrap + " not ready in " + args[1] + " s (" + last + ")");
    System.exit(1);
  }
}

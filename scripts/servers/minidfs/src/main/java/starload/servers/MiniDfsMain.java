package starload.servers;

import java.io.File;
import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.InputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * A loopback-only MiniDFSCluster (1 NameNode, 1 DataNode) for tests.
 *
 * Usage: MiniDfsMain [--port N] [--dir DIR] [--no-stdin] [--conf key=value]...
 *   --port      NameNode RPC port (env MINIDFS_PORT, default 9000)
 *   --http-port NameNode HTTP port (env MINIDFS_HTTP_PORT, default 0 = any free port)
 *   --dir       base directory for name/data dirs (env MINIDFS_DIR, default ./minidfs-data);
 *               it is formatted (wiped) on every start
 *   --no-stdin  do not exit when stdin reaches EOF (for daemon use; stop it with SIGTERM)
 *   --conf k=v  extra Hadoop configuration (repeatable)
 *
 * Prints exactly one line on stdout, "Ready! hdfs://127.0.0.1:PORT", once the cluster is
 * active; all logging goes to stderr. Shuts down on stdin EOF or SIGTERM.
 */
public final class MiniDfsMain {
  private static final String HOST = "127.0.0.1";

  public static void main(String[] args) {
    try {
      run(args);
    } catch (Throwable t) {
      // A failed start must end the JVM: non-daemon threads (Derby, DataNucleus, Hadoop) would
      // otherwise keep it alive with nothing serving.
      System.err.println("MiniDfsMain: failed: " + t);
      t.printStackTrace();
      Runtime.getRuntime().halt(1);
    }
  }

  private static void run(String[] args) throws Exception {
    // Keep stdout for the readiness line only: anything else printed to System.out goes to stderr.
    PrintStream ready = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
    System.setOut(System.err);

    int port = Integer.parseInt(env("MINIDFS_PORT", "9000"));
    int httpPort = Integer.parseInt(env("MINIDFS_HTTP_PORT", "0"));
    String dir = env("MINIDFS_DIR", "minidfs-data");
    boolean watchStdin = !"1".equals(System.getenv("MINIDFS_NO_STDIN"));
    List<String> extra = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--port": port = Integer.parseInt(args[++i]); break;
        case "--http-port": httpPort = Integer.parseInt(args[++i]); break;
        case "--dir": dir = args[++i]; break;
        case "--no-stdin": watchStdin = false; break;
        case "--conf": extra.add(args[++i]); break;
        default:
          System.err.println("unknown argument: " + args[i]);
          System.exit(2);
      }
    }

    Configuration conf = new HdfsConfiguration();
    conf.set("dfs.namenode.rpc-address", HOST + ":" + port);
    conf.set("dfs.namenode.rpc-bind-host", HOST);
    conf.set("dfs.namenode.servicerpc-bind-host", HOST);
    conf.set("dfs.namenode.lifeline.rpc-bind-host", HOST);
    conf.set("dfs.namenode.http-address", HOST + ":" + httpPort);
    conf.set("dfs.namenode.http-bind-host", HOST);
    conf.set("dfs.namenode.https-address", HOST + ":0");
    conf.set("dfs.namenode.https-bind-host", HOST);
    conf.set("dfs.namenode.secondary.http-address", HOST + ":0");
    conf.set("dfs.namenode.secondary.https-address", HOST + ":0");
    conf.set("dfs.namenode.backup.address", HOST + ":0");
    conf.set("dfs.namenode.backup.http-address", HOST + ":0");
    conf.set("dfs.datanode.address", HOST + ":0");
    conf.set("dfs.datanode.http.address", HOST + ":0");
    conf.set("dfs.datanode.https.address", HOST + ":0");
    conf.set("dfs.datanode.ipc.address", HOST + ":0");
    conf.set("dfs.journalnode.rpc-address", HOST + ":0");
    conf.set("dfs.journalnode.http-address", HOST + ":0");
    conf.set("dfs.journalnode.https-address", HOST + ":0");
    conf.set("fs.defaultFS", "hdfs://" + HOST + ":" + port);
    conf.setBoolean("dfs.permissions.enabled", false);
    conf.set("hadoop.security.authentication", "simple");
    conf.setInt("dfs.replication", 1);
    conf.setInt("dfs.namenode.safemode.extension", 0);
    for (String kv : extra) {
      int eq = kv.indexOf('=');
      if (eq <= 0) {
        System.err.println("--conf expects key=value, got: " + kv);
        System.exit(2);
      }
      conf.set(kv.substring(0, eq), kv.substring(eq + 1));
    }

    File baseDir = new File(dir).getAbsoluteFile();
    baseDir.mkdirs();
    final MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf, baseDir)
        .nameNodePort(port)
        .nameNodeHttpPort(httpPort)
        .numDataNodes(1)
        .format(true)
        .checkDataNodeAddrConfig(true)
        .build();
    // Shut down from an ordinary thread (on SIGTERM/SIGINT or stdin EOF), not from a JVM shutdown
    // hook: Hadoop's own ShutdownHookManager refuses some calls while the JVM is shutting down.
    final AtomicBoolean stopped = new AtomicBoolean(false);
    final Runnable stop = () -> {
      if (stopped.compareAndSet(false, true)) {
        System.err.println("MiniDfsMain: shutting down");
        try {
          cluster.shutdown();
        } catch (Throwable t) {
          t.printStackTrace();
        }
      }
    };
    SignalHandler onSignal = sig -> new Thread(() -> {
      System.err.println("MiniDfsMain: got SIG" + sig.getName());
      stop.run();
      System.exit(0);
    }, "minidfs-stop").start();
    Signal.handle(new Signal("TERM"), onSignal);
    Signal.handle(new Signal("INT"), onSignal);
    Runtime.getRuntime().addShutdownHook(new Thread(stop, "minidfs-shutdown"));
    cluster.waitActive();
    cluster.waitClusterUp();

    ready.println("Ready! hdfs://" + HOST + ":" + cluster.getNameNodePort());
    ready.flush();

    if (watchStdin) {
      InputStream in = System.in;
      byte[] buf = new byte[256];
      while (in.read(buf) >= 0) { /* discard */ }
      System.err.println("MiniDfsMain: stdin closed");
      stop.run();
      System.exit(0);
    } else {
      Thread.currentThread().join();
    }
  }

  private static String env(String name, String dflt) {
    String v = System.getenv(name);
    return v == null || v.isEmpty() ? dflt : v;
  }
}

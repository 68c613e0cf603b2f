package starload.servers;

import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hive.metastore.IHMSHandler;
import org.apache.hadoop.hive.metastore.api.ThriftHiveMetastore;
import org.apache.hadoop.hive.metastore.TSetIpAddressProcessor;
import org.apache.hadoop.hive.metastore.conf.MetastoreConf;
import org.apache.hadoop.hive.metastore.security.TUGIContainingTransport;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.server.TServer;
import org.apache.thrift.server.TServerEventHandler;
import org.apache.thrift.server.TThreadPoolServer;
import org.apache.thrift.transport.TServerSocket;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * Hive Metastore (3.1.3 or 4.0.1, whichever is on the classpath) Thrift server bound to 127.0.0.1 only, with an embedded Derby database.
 *
 * Usage: HmsMain [--port N] [--dir STATE] [--warehouse DIR] [--keep-db] [--no-stdin] [--conf k=v]...
 *   --port       Thrift port (env HMS_PORT, default 9083)
 *   --dir        state dir for metastore_db/ and derby.log (env HMS_DIR, default ./hms-data);
 *                metastore_db is recreated on every start unless --keep-db
 *   --warehouse  warehouse root, a path or URI (env HMS_WAREHOUSE, default STATE/warehouse)
 *   --no-stdin   do not exit on stdin EOF (daemon use; stop with SIGTERM)
 *   --conf k=v   extra metastore/Hadoop configuration (repeatable)
 *
 * Table/partition locations on s3://, s3a:// and s3n:// are accepted without any S3 access
 * (MetadataOnlyFileSystem), so tables can point at buckets of a test S3 server.
 * Prints one line on stdout, "Ready! thrift://127.0.0.1:PORT", once the socket accepts calls.
 */
public final class HmsMain {
  private static final String HOST = "127.0.0.1";

  public static void main(String[] args) {
    try {
      run(args);
    } catch (Throwable t) {
      // A failed start must end the JVM: non-daemon threads (Derby, DataNucleus, Hadoop) would
      // otherwise keep it alive with nothing serving.
      System.err.println("HmsMain: failed: " + t);
      t.printStackTrace();
      Runtime.getRuntime().halt(1);
    }
  }

  private static void run(String[] args) throws Exception {
    PrintStream ready = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
    System.setOut(System.err);
    if (System.getProperty("log4j2.configurationFile") == null) {
      System.setProperty("log4j2.configurationFile", "hms-log4j2.properties");
    }

    int port = Integer.parseInt(env("HMS_PORT", "9083"));
    String dir = env("HMS_DIR", "hms-data");
    String warehouse = System.getenv("HMS_WAREHOUSE");
    boolean keepDb = false;
    String template = System.getenv("HMS_TEMPLATE");
    boolean watchStdin = !"1".equals(System.getenv("HMS_NO_STDIN"));
    List<String> extra = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--port": port = Integer.parseInt(args[++i]); break;
        case "--dir": dir = args[++i]; break;
        case "--warehouse": warehouse = args[++i]; break;
        case "--keep-db": keepDb = true; break;
        case "--template": template = args[++i]; break;
        case "--no-stdin": watchStdin = false; break;
        case "--conf": extra.add(args[++i]); break;
        default:
          System.err.println("unknown argument: " + args[i]);
          System.exit(2);
      }
    }
    File state = new File(dir).getAbsoluteFile();
    state.mkdirs();
    File db = new File(state, "metastore_db");
    if (warehouse == null || warehouse.isEmpty()) warehouse = new File(state, "warehouse").getPath();
    if (!warehouse.contains(":/")) {
      File wh = new File(warehouse).getAbsoluteFile();
      wh.mkdirs();
      warehouse = "file:" + wh.getPath();
    }
    System.setProperty("derby.stream.error.file", new File(state, "derby.log").getPath());
    File templateDb = template == null || template.isEmpty() ? null
        : new File(new File(template).getAbsoluteFile(), "metastore_db");
    boolean fromTemplate = false;
    if (!keepDb) {
      deleteTree(db.toPath());
      if (templateDb != null && new File(templateDb, "service.properties").isFile()) {
        try {
          restoreTemplate(templateDb, db, warehouse);
          fromTemplate = true;
        } catch (Exception e) {
          System.err.println("HmsMain: ignoring unusable template " + templateDb + ": " + e);
          deleteTree(db.toPath());
        }
      }
    }

    Configuration conf = MetastoreConf.newMetastoreConf();
    conf.set("javax.jdo.option.ConnectionURL", "jdbc:derby:;databaseName=" + db.getPath() + ";create=true");
    conf.set("javax.jdo.option.ConnectionDriverName", "org.apache.derby.jdbc.EmbeddedDriver");
    conf.set("javax.jdo.option.ConnectionUserName", "APP");
    conf.set("javax.jdo.option.ConnectionPassword", "mine");
    conf.set("datanucleus.schema.autoCreateAll", "true");
    conf.set("metastore.schema.verification", "false");
    conf.set("hive.metastore.schema.verification", "false");
    conf.set("metastore.warehouse.dir", warehouse);
    conf.set("metastore.warehouse.external.dir", warehouse);
    conf.set("metastore.thrift.bind.host", HOST);
    conf.set("metastore.thrift.uris", "thrift://" + HOST + ":" + port);
    conf.set("metastore.metrics.enabled", "false");
    conf.set("metastore.event.db.notification.api.auth", "false");
    conf.set("metastore.authorization.storage.checks", "false");
    // Without hive-exec there is no PartitionExpressionForMetastore (Hive 3 fails to start without
    // this); get_partitions_by_expr is unavailable, get_partitions_by_filter works.
    conf.set("metastore.expression.proxy", "org.apache.hadoop.hive.metastore.DefaultPartitionExpressionProxy");
    // Hive 3 starts these housekeeping tasks in init(); the default list names a hive-exec class.
    conf.set("metastore.task.threads.always", "org.apache.hadoop.hive.metastore.events.EventCleanerTask");
    conf.set("fs.s3.impl", MetadataOnlyFileSystem.class.getName());
    conf.set("fs.s3a.impl", MetadataOnlyFileSystem.class.getName());
    conf.set("fs.s3n.impl", MetadataOnlyFileSystem.class.getName());
    conf.set("fs.s3.impl.disable.cache", "true");
    conf.set("fs.s3a.impl.disable.cache", "true");
    conf.set("fs.s3n.impl.disable.cache", "true");
    for (String kv : extra) {
      int eq = kv.indexOf('=');
      if (eq <= 0) {
        System.err.println("--conf expects key=value, got: " + kv);
        System.exit(2);
      }
      conf.set(kv.substring(0, eq), kv.substring(eq + 1));
    }

    // Bind first (loopback only) so that a busy port fails the start at once.
    TServerSocket socket = new TServerSocket(new InetSocketAddress(InetAddress.getByName(HOST), port));
    ThriftHiveMetastore.Iface handler = newHandler(conf);
    // Warm up DataNucleus/Derby so the first client call is not the slow one.
    handler.get_database("default");
    handler.get_all_tables("default");
    if (templateDb != null && !fromTemplate && !keepDb && !templateDb.exists()) {
      try {
        saveTemplate(db, templateDb);
      } catch (Exception e) {
        System.err.println("HmsMain: could not save template " + templateDb + ": " + e);
      }
    }

    TThreadPoolServer.Args targs = new TThreadPoolServer.Args(socket)
        .processor(new TSetIpAddressProcessor<>(handler))
        .transportFactory(new TUGIContainingTransport.Factory())
        .protocolFactory(new TBinaryProtocol.Factory())
        .minWorkerThreads(2)
        .maxWorkerThreads(64);
    final TServer server = new TThreadPoolServer(targs);
    final int boundPort = socket.getServerSocket().getLocalPort();
    server.setServerEventHandler(new TServerEventHandler() {
      @Override public void preServe() {
        ready.println("Ready! thrift://" + HOST + ":" + boundPort);
        ready.flush();
      }
      @Override public org.apache.thrift.server.ServerContext createContext(
          org.apache.thrift.protocol.TProtocol in, org.apache.thrift.protocol.TProtocol out) { return null; }
      @Override public void deleteContext(org.apache.thrift.server.ServerContext ctx,
          org.apache.thrift.protocol.TProtocol in, org.apache.thrift.protocol.TProtocol out) { }
      @Override public void processContext(org.apache.thrift.server.ServerContext ctx,
          org.apache.thrift.transport.TTransport in, org.apache.thrift.transport.TTransport out) { }
    });

    final AtomicBoolean stopped = new AtomicBoolean(false);
    final Runnable stop = () -> {
      if (stopped.compareAndSet(false, true)) {
        System.err.println("HmsMain: shutting down");
        server.stop();
        try {
          java.sql.DriverManager.getConnection("jdbc:derby:;shutdown=true");
        } catch (Throwable expected) {
          // Derby reports a successful shutdown as an SQLException
        }
      }
    };
    SignalHandler onSignal = sig -> new Thread(() -> {
      System.err.println("HmsMain: got SIG" + sig.getName());
      stop.run();
      System.exit(0);
    }, "hms-stop").start();
    Signal.handle(new Signal("TERM"), onSignal);
    Signal.handle(new Signal("INT"), onSignal);

    Thread serve = new Thread(server::serve, "hms-serve");
    serve.start();

    if (watchStdin) {
      InputStream in = System.in;
      byte[] buf = new byte[256];
      while (in.read(buf) >= 0) { /* discard */ }
      System.err.println("HmsMain: stdin closed");
      stop.run();
      System.exit(0);
    } else {
      serve.join();
    }
  }

  /** The retrying metastore handler: Hive 4 has HMSHandler + HMSHandlerProxyFactory, Hive 3 has
   *  HiveMetaStore.HMSHandler + RetryingHMSHandler. Both proxies call init() on the handler. */
  private static ThriftHiveMetastore.Iface newHandler(Configuration conf) throws Exception {
    try {
      Object base;
      Class<?> factory;
      String method;
      try {
        Class<?> h = Class.forName("org.apache.hadoop.hive.metastore.HMSHandler");
        base = h.getConstructor(String.class, Configuration.class).newInstance("starload-hms", conf);
        factory = Class.forName("org.apache.hadoop.hive.metastore.HMSHandlerProxyFactory");
      } catch (ClassNotFoundException hive3) {
        Class<?> h = Class.forName("org.apache.hadoop.hive.metastore.HiveMetaStore$HMSHandler");
        base = h.getConstructor(String.class, Configuration.class, boolean.class)
            .newInstance("starload-hms", conf, false);
        factory = Class.forName("org.apache.hadoop.hive.metastore.RetryingHMSHandler");
      }
      return (ThriftHiveMetastore.Iface) factory
          .getMethod("getProxy", Configuration.class, IHMSHandler.class, boolean.class)
          .invoke(null, conf, base, false);
    } catch (java.lang.reflect.InvocationTargetException e) {
      Throwable c = e.getCause();
      if (c instanceof Exception) throw (Exception) c;
      throw e;
    }
  }

  private static final String DERBY_USER = "APP";
  private static final String DERBY_PASSWORD = "mine";

  /** Creates DB from a Derby backup and points the default catalog/database at WAREHOUSE. */
  private static void restoreTemplate(File templateDb, File db, String warehouse) throws Exception {
    String url = "jdbc:derby:;databaseName=" + db.getPath() + ";createFrom=" + templateDb.getPath();
    try (java.sql.Connection c = java.sql.DriverManager.getConnection(url, DERBY_USER, DERBY_PASSWORD)) {
      try (java.sql.PreparedStatement st =
               c.prepareStatement("UPDATE \"CTLGS\" SET \"LOCATION_URI\" = ? WHERE \"NAME\" = 'hive'")) {
        st.setString(1, warehouse);
        st.executeUpdate();
      }
      try (java.sql.PreparedStatement st = c.prepareStatement(
               "UPDATE \"DBS\" SET \"DB_LOCATION_URI\" = ? WHERE \"NAME\" = 'default'")) {
        st.setString(1, warehouse);
        st.executeUpdate();
      }
    }
  }

  /** Online Derby backup of the freshly initialised DB into TEMPLATE_DB (atomic rename). */
  private static void saveTemplate(File db, File templateDb) throws Exception {
    File parent = templateDb.getParentFile();
    parent.mkdirs();
    File tmp = new File(parent, "tmp-" + ProcessHandle.current().pid());
    deleteTree(tmp.toPath());
    try (java.sql.Connection c = java.sql.DriverManager.getConnection(
             "jdbc:derby:;databaseName=" + db.getPath(), DERBY_USER, DERBY_PASSWORD);
         java.sql.CallableStatement cs = c.prepareCall("CALL SYSCS_UTIL.SYSCS_BACKUP_DATABASE(?)")) {
      cs.setString(1, tmp.getPath());
      cs.execute();
    }
    try {
      Files.move(new File(tmp, db.getName()).toPath(), templateDb.toPath(),
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (java.nio.file.FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException raced) {
      // another process saved it first
    } finally {
      deleteTree(tmp.toPath());
    }
  }

  private static void deleteTree(Path p) throws Exception {
    if (!Files.exists(p)) return;
    try (Stream<Path> s = Files.walk(p)) {
      s.sorted(Comparator.reverseOrder()).forEach(x -> x.toFile().delete());
    }
  }

  private static String env(String name, String dflt) {
    String v = System.getenv(name);
    return v == null || v.isEmpty() ? dflt : v;
  }
}

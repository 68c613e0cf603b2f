package starload.servers;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.URI;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.util.Progressable;

/**
 * A stand-in for object-store schemes (s3, s3a, s3n) inside the test metastore: every path is an
 * empty directory, mkdirs/delete/rename succeed, and no data can be read or written. The metastore
 * only needs to check/create table and partition directories; the real data lives in the test S3
 * server and is read by the loader itself.
 */
public class MetadataOnlyFileSystem extends FileSystem {
  private URI uri;
  private Path workingDir;

  @Override
  public void initialize(URI name, Configuration conf) throws IOException {
    super.initialize(name, conf);
    setConf(conf);
    this.uri = URI.create(name.getScheme() + "://" + (name.getAuthority() == null ? "" : name.getAuthority()));
    this.workingDir = new Path(uri.toString() + "/");
  }

  @Override public String getScheme() { return uri == null ? "s3a" : uri.getScheme(); }
  @Override public URI getUri() { return uri; }

  @Override
  public FSDataInputStream open(Path f, int bufferSize) throws IOException {
    throw new FileNotFoundException("metadata-only filesystem (test metastore): " + f);
  }

  @Override
  public FSDataOutputStream create(Path f, FsPermission permission, boolean overwrite, int bufferSize,
      short replication, long blockSize, Progressable progress) throws IOException {
    throw new IOException("metadata-only filesystem (test metastore) cannot write " + f);
  }

  @Override
  public FSDataOutputStream append(Path f, int bufferSize, Progressable progress) throws IOException {
    throw new IOException("metadata-only filesystem (test metastore) cannot write " + f);
  }

  @Override public boolean rename(Path src, Path dst) { return true; }
  @Override public boolean delete(Path f, boolean recursive) { return true; }
  @Override public FileStatus[] listStatus(Path f) { return new FileStatus[0]; }
  @Override public void setWorkingDirectory(Path newDir) { workingDir = newDir; }
  @Override public Path getWorkingDirectory() { return workingDir; }
  @Override public boolean mkdirs(Path f, FsPermission permission) { return true; }

  @Override
  public FileStatus getFileStatus(Path f) {
    Path q = f.isAbsolute() ? f : new Path(workingDir, f);
    return new FileStatus(0L, true, 1, 0L, 0L, 0L, FsPermission.getDirDefault(), "hive", "hive",
        q.makeQualified(uri, workingDir));
  }
}

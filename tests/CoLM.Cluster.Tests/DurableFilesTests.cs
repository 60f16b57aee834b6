using CoLM.Cluster.Runs;

namespace CoLM.Cluster.Tests;

public sealed class DurableFilesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("colm-durable-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_folder_is_synced_and_a_file_is_written_to_disk_whole()
    {
        var file = Path.Combine(_dir, "state.bin");
        DurableFiles.WriteAllBytes(file, [1, 2, 3]);
        DurableFiles.WriteAllBytes(file, [4, 5]);
        DurableFiles.SyncDirectory(_dir);

        Assert.Equal([4, 5], File.ReadAllBytes(file));
    }

    [Fact]
    public void Syncing_a_folder_that_does_not_exist_is_an_io_error_naming_it()
    {
        if (!OperatingSystem.IsLinux()) return;
        var missing = Path.Combine(_dir, "gone");

        var e = Assert.Throws<IOException>(() => DurableFiles.SyncDirectory(missing));

        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void Syncing_a_file_as_a_folder_is_refused()
    {
        if (!OperatingSystem.IsLinux()) return;
        var file = Path.Combine(_dir, "plain.txt");
        File.WriteAllText(file, "x");

        Assert.Throws<IOException>(() => DurableFiles.SyncDirectory(file));
    }
}

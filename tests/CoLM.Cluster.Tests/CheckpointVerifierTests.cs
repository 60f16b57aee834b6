using System.Security.Cryptography;
using System.Text.Json;
using CoLM.Cluster.Runs;

namespace CoLM.Cluster.Tests;

public sealed class CheckpointVerifierTests : IDisposable
{
    private readonly CheckpointFolders _folders = new();

    public void Dispose() => _folders.Dispose();

    [Fact]
    public void A_completed_checkpoint_lists_every_file_with_its_length_and_sha256_and_verifies()
    {
        var checkpoint = _folders.Write(4);

        var manifest = CheckpointManifest.Read(checkpoint.Manifest, out var problem);
        Assert.Null(problem);
        Assert.Equal(4, manifest!.Step);
        Assert.Equal(["adapter/adapter_config.json", "config.conf", "coordinator.json", "normalizer.bin", "trainer-state.bin"],
            manifest.Files.Select(f => f.Path));
        foreach (var entry in manifest.Files)
        {
            var bytes = File.ReadAllBytes(Path.Combine(checkpoint.Directory, entry.Path));
            Assert.Equal(bytes.Length, entry.Length);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), entry.Sha256);
        }
        Assert.Equal(new CheckpointVerdict(null), CheckpointVerifier.Verify(checkpoint));
        Assert.Empty(Directory.GetDirectories(_folders.Run.CheckpointsPath, ".*"));
    }

    [Fact]
    public void A_flipped_byte_is_a_sha256_mismatch_naming_the_file()
    {
        var checkpoint = _folders.Write(4);
        CheckpointFolders.FlipByte(checkpoint.TrainerState);

        var verdict = CheckpointVerifier.Verify(checkpoint);

        Assert.False(verdict.Usable);
        Assert.Equal("trainer-state.bin: SHA-256 does not match its manifest (file changed or damaged)", verdict.Problem);
    }

    [Fact]
    public void A_truncated_file_is_reported_with_both_lengths()
    {
        var checkpoint = _folders.Write(4);
        CheckpointFolders.Truncate(checkpoint.TrainerState, 1000);

        Assert.Equal("trainer-state.bin: truncated: 1000 of 4096 bytes", CheckpointVerifier.Verify(checkpoint).Problem);
    }

    [Fact]
    public void A_missing_file_is_reported_by_its_path_in_the_checkpoint()
    {
        var checkpoint = _folders.Write(4);
        File.Delete(Path.Combine(checkpoint.Adapter, "adapter_config.json"));

        Assert.Equal("adapter/adapter_config.json: missing (its manifest lists it)", CheckpointVerifier.Verify(checkpoint).Problem);
    }

    [Fact]
    public void A_manifest_that_does_not_parse_or_omits_a_needed_file_is_refused()
    {
        var checkpoint = _folders.Write(4);
        var json = File.ReadAllText(checkpoint.Manifest);
        File.WriteAllText(checkpoint.Manifest, json[..(json.Length / 2)]);
        Assert.StartsWith("manifest.json does not parse", CheckpointVerifier.Verify(checkpoint).Problem);

        var manifest = JsonSerializer.Deserialize<CheckpointManifest>(json, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase })!;
        File.WriteAllText(checkpoint.Manifest, (manifest with { Files = [.. manifest.Files.Where(f => f.Path != "normalizer.bin")] }).ToJson());
        Assert.Equal("manifest.json does not list normalizer.bin", CheckpointVerifier.Verify(checkpoint).Problem);
    }

    [Fact]
    public void A_checkpoint_without_a_manifest_is_accepted_with_a_note_that_it_was_not_verified()
    {
        var checkpoint = _folders.Write(4);
        File.Delete(checkpoint.Manifest);
        CheckpointFolders.FlipByte(checkpoint.TrainerState);

        var verdict = CheckpointVerifier.Verify(checkpoint);

        Assert.True(verdict.Usable);
        Assert.Equal("has no manifest (written by an older colm): not verified", verdict.Note);
    }

    [Fact]
    public void A_checkpoint_without_a_manifest_whose_coordinator_state_does_not_parse_is_refused()
    {
        var checkpoint = _folders.Write(4);
        File.Delete(checkpoint.Manifest);
        CheckpointFolders.Truncate(checkpoint.Coordinator, 20);

        var verdict = CheckpointVerifier.Verify(checkpoint);

        Assert.False(verdict.Usable);
        Assert.StartsWith("coordinator.json: corrupt coordinator state", verdict.Problem);
    }

    [Fact]
    public void The_newest_checkpoint_that_verifies_is_chosen_and_each_newer_one_is_named_with_its_reason()
    {
        var older = _folders.Write(2);
        var newest = _folders.Write(4);
        CheckpointFolders.FlipByte(newest.TrainerState);

        var choice = CheckpointVerifier.LatestVerified(_folders.Run);

        Assert.Equal(older, choice.Chosen);
        Assert.Null(choice.Note);
        var skipped = Assert.Single(choice.Skipped);
        Assert.Equal("skipped checkpoint step-000004: trainer-state.bin: SHA-256 does not match its manifest (file changed or damaged)", skipped.Line);
        Assert.Equal(newest, CheckpointStore.Latest(_folders.Run));
    }

    [Fact]
    public void When_no_checkpoint_verifies_none_is_chosen_and_every_one_is_named()
    {
        var older = _folders.Write(2);
        var newest = _folders.Write(4);
        CheckpointFolders.Truncate(older.Normalizer, 3);
        File.Delete(newest.Coordinator);

        var choice = CheckpointVerifier.LatestVerified(_folders.Run);

        Assert.Null(choice.Chosen);
        Assert.Equal(["skipped checkpoint step-000004: coordinator.json: missing (its manifest lists it)",
                      "skipped checkpoint step-000002: normalizer.bin: truncated: 3 of 28 bytes"], choice.Skipped.Select(s => s.Line));
    }

    [Fact]
    public void A_damaged_checkpoint_set_aside_is_hidden_from_latest_and_kept_for_a_look()
    {
        var older = _folders.Write(2);
        var newest = _folders.Write(4);

        var aside = CheckpointStore.SetAside(newest);

        Assert.Equal(".step-000004.damaged", Path.GetFileName(aside));
        Assert.True(File.Exists(Path.Combine(aside, "trainer-state.bin")));
        Assert.Equal(older, CheckpointStore.Latest(_folders.Run));
    }
}

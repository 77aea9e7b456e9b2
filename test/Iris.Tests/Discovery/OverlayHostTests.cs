using Iris.Overlay.Discovery;
using Iris.Overlay.Hosting;
using Iris.Overlay.Security;

namespace Iris.Tests.Discovery;

public class OverlayHostTests
{
    [Fact]
    public async Task A_node_with_a_key_file_keeps_its_key_across_restarts()
    {
        var file = Path.Combine(Path.GetTempPath(), "iris-test-" + Guid.NewGuid().ToString("N"), "node-key");
        var options = new OverlayOptions { NodeKeyFile = file };
        options.Discovery.Scope = DiscoveryScope.None;
        var network = NetworkKey.Generate();

        Iris.Overlay.NodeKey first;
        await using (var host = await OverlayHost.StartAsync(options, network, development: true))
        {
            first = host.Node.Self.Key;
        }

        await using (var again = await OverlayHost.StartAsync(options, network, development: true))
        {
            Assert.Equal(first, again.Node.Self.Key);
        }

        File.WriteAllText(file, "not a key");
        Assert.Contains("delete it", Assert.Throws<FormatException>(() => OverlayHost.NodeKeyFor(options)).Message);
        Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
    }

    [Fact]
    public void Seeds_are_read_with_or_without_the_scheme_and_bad_ones_are_named()
    {
        Assert.Equal("tcp://127.0.0.1:5000", OverlayHost.ParseSeed("127.0.0.1:5000").Value);
        Assert.Equal("tcp://127.0.0.1:5000", OverlayHost.ParseSeed(" tcp://127.0.0.1:5000 ").Value);
        Assert.Contains("Iris:Network:Seeds", Assert.Throws<FormatException>(() => OverlayHost.ParseSeed("example.org")).Message);
    }
}

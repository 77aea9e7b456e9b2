using System.Globalization;
using System.Text.Json;
using Iris.Hosting;
using Iris.Overlay.Security;
using Iris.Tests.Support;

namespace Iris.Tests.Pages;

/// <summary>
/// Two Iris.Silo processes of one network, each with its HTTP endpoint, the first with a member of cluster
/// <c>demo</c> (the silo's echo member): what the pages are tested against. Ready once the first silo's status lists
/// both silos and every split of the cluster with its member.
/// </summary>
public sealed class TwoSiloNetwork : IAsyncLifetime
{
    public const string Cluster = "demo";

    private readonly List<ChildProcess> _silos = [];

    public int[] HttpPorts { get; } = [PortPicker.AnyFree(), PortPicker.AnyFree()];

    internal IReadOnlyList<ChildProcess> Silos => _silos;

    /// <summary>The silos' addresses as their status gives them (<c>127.0.0.1:port@generation</c>).</summary>
    public string[] SiloAddresses { get; private set; } = [];

    public HttpClient Http(int silo) => new() { BaseAddress = new Uri($"http://127.0.0.1:{HttpPorts[silo]}/"), Timeout = TimeSpan.FromSeconds(10) };

    public async Task InitializeAsync()
    {
        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var discovery = (41000 + (Random.Shared.Next(0, 500) * 16)).ToString(CultureInfo.InvariantCulture);
        for (var i = 0; i < 2; i++)
        {
            var variables = new Dictionary<string, string>
            {
                ["DOTNET_ENVIRONMENT"] = "Development",
                ["Logging__Console__DisableColors"] = "true",
                ["Iris__Network__Key"] = key,
                ["Iris__Network__Discovery__Port"] = discovery,
                ["Iris__Silo__SiloPort"] = PortPicker.AnyFree().ToString(CultureInfo.InvariantCulture),
                ["Iris__Silo__GatewayPort"] = PortPicker.AnyFree().ToString(CultureInfo.InvariantCulture),
                ["Iris__Relay__Enabled"] = "false",
                ["Iris__Http__Port"] = HttpPorts[i].ToString(CultureInfo.InvariantCulture),
            };
            if (i == 0)
            {
                variables["Iris__Silo__EchoCluster"] = Cluster;
            }

            _silos.Add(ChildProcess.Start("dotnet", [RepositoryPaths.Program("src", "Iris.Silo")], variables));
        }

        using var http = Http(0);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        string last = "no answer";
        while (true)
        {
            try
            {
                using var response = await http.GetAsync("iris/api/status");
                var status = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                last = status.ToString();
                if (response.IsSuccessStatusCode
                    && status.GetProperty("silos").GetArrayLength() == 2
                    && status.GetProperty("silos").EnumerateArray().Sum(s => s.GetProperty("rendezvous").EnumerateArray()
                        .Count(r => r.GetProperty("name").GetString() == Cluster && r.GetProperty("processes").GetArrayLength() > 0)) == 4)
                {
                    SiloAddresses = [.. status.GetProperty("silos").EnumerateArray().Select(s => s.GetProperty("silo").GetString()!)];
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
            {
                last = e.Message;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"The two silos did not form one network with cluster '{Cluster}' within 90 s; last status: {last}\n"
                    + string.Join("\n----\n", _silos.Select(s => s.Output)));
            }

            await Task.Delay(250);
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var silo in _silos)
        {
            silo.Interrupt();
        }

        foreach (var silo in _silos)
        {
            await silo.DisposeAsync();
        }
    }
}

using System.Text.Json;
using Iris.Tests.Support;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Iris.Tests.Pages;

/// <summary>
/// The Iris page (<c>/iris</c>), its status API and the Orleans dashboard (<c>/dashboard</c>) of two real silos: over
/// HTTP, and in a real headless Chromium driven by Playwright (Debian's chromium, installed by
/// <c>test/setup-browser.sh</c>; those tests are skipped, saying so, where it is not installed).
/// </summary>
public sealed class PagesTests(TwoSiloNetwork network, ITestOutputHelper output) : IClassFixture<TwoSiloNetwork>
{
    /// <summary>Where the browser is: <c>IRIS_CHROMIUM</c>, or Debian's package.</summary>
    private static readonly string Chromium = Environment.GetEnvironmentVariable("IRIS_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    /// <summary>Flags for a browser on a machine with no network beyond loopback: without the background-networking
    /// ones Chromium keeps trying to reach Google's hosts.</summary>
    private static readonly string[] ChromiumFlags =
        ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

    [Fact]
    public async Task The_status_API_lists_both_silos_and_the_cluster_with_its_member_on_the_silo_that_serves_it()
    {
        using var http = network.Http(1);

        // A split whose ring root moved steps aside (RendezvousGrain.CheckRootAsync) and is listed again once the next
        // registration renewal activates it on its new root: the status is read until every split is listed again.
        JsonElement status = default;
        await Eventually.HoldsAsync(
            async () =>
            {
                status = JsonDocument.Parse(await http.GetStringAsync("iris/api/status")).RootElement;
                return status.GetProperty("silos").EnumerateArray().SelectMany(s => s.GetProperty("rendezvous").EnumerateArray())
                    .Count(r => r.GetProperty("name").GetString() == TwoSiloNetwork.Cluster) == 4;
            },
            "every split of the cluster listed in the status",
            TimeSpan.FromSeconds(30));

        var silos = status.GetProperty("silos").EnumerateArray().ToArray();
        Assert.Equal(network.SiloAddresses.Order(), silos.Select(s => s.GetProperty("silo").GetString()).Order());
        Assert.All(silos, s => Assert.True(s.GetProperty("inRing").GetBoolean()));

        // Each silo's leaf set holds the other silo.
        foreach (var silo in silos)
        {
            var other = silos.Single(s => s.GetProperty("silo").GetString() != silo.GetProperty("silo").GetString());
            Assert.Contains(silo.GetProperty("leafSet").EnumerateArray(), n => n.GetProperty("ringKey").GetString() == other.GetProperty("ringKey").GetString());
        }

        // The first silo serves the cluster (its echo member, with the capacity it measured); every split of the name is
        // rooted on one of the two silos and lists that silo's process.
        var served = silos.Single(s => s.GetProperty("silo").GetString() == network.SiloAddresses.Single(a => silos.Any(x => x.GetProperty("served").GetArrayLength() > 0 && x.GetProperty("silo").GetString() == a)));
        var member = Assert.Single(served.GetProperty("served").EnumerateArray());
        Assert.Equal(TwoSiloNetwork.Cluster, member.GetProperty("name").GetString());
        Assert.Equal("Cluster", member.GetProperty("kind").GetString());
        Assert.Equal(1, member.GetProperty("count").GetInt32());
        Assert.True(member.GetProperty("capacity").GetDouble() > 0);
        var splits = silos.SelectMany(s => s.GetProperty("rendezvous").EnumerateArray()).Where(r => r.GetProperty("name").GetString() == TwoSiloNetwork.Cluster).ToArray();
        Assert.Equal([0, 1, 2, 3], splits.Select(r => r.GetProperty("split").GetInt32()).Order());
        Assert.All(splits, r => Assert.Contains(r.GetProperty("processes").EnumerateArray(), p => p.GetProperty("silo").GetString() == served.GetProperty("silo").GetString()));
    }

    [Fact]
    public async Task The_pages_answer_and_the_dashboard_counters_are_not_stuck_at_zero()
    {
        using var http = network.Http(0);
        using (var page = await http.GetAsync("iris"))
        {
            Assert.Equal(200, (int)page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        }

        using (var dashboard = await http.GetAsync("dashboard/"))
        {
            Assert.Equal(200, (int)dashboard.StatusCode);
        }

        // The dashboard reads Orleans' meter ("Microsoft.Orleans" in Orleans 10) once a second: its counters for this
        // silo carry values, not zeros.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        var self = network.SiloAddresses.First();
        while (true)
        {
            var counters = JsonDocument.Parse(await http.GetStringAsync($"dashboard/SiloCounters/{self}")).RootElement.EnumerateArray().ToArray();
            var nonZero = counters.Where(c => double.TryParse(c.GetProperty("value").GetString(), System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0).ToArray();
            if (nonZero.Any(c => c.GetProperty("name").GetString()!.StartsWith("orleans-", StringComparison.Ordinal)))
            {
                output.WriteLine($"{nonZero.Length} of {counters.Length} dashboard counters are non-zero, e.g. {nonZero[0].GetProperty("name").GetString()}");
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, $"every dashboard counter of {self} is zero or missing after 30 s: {string.Join(", ", counters.Select(c => c.GetProperty("name").GetString()))}");
            await Task.Delay(500);
        }
    }

    [SkippableFact]
    public async Task In_Chromium_the_Iris_page_shows_both_silos_and_the_cluster_with_its_member_without_script_errors()
    {
        await using var browser = await BrowserSession.LaunchAsync();
        var (page, errors) = await OpenAsync(browser.Browser, $"http://127.0.0.1:{network.HttpPorts[0]}/iris");
        await page.WaitForSelectorAsync("body[data-loaded=true]", new PageWaitForSelectorOptions { Timeout = 30_000 });
        await ScreenshotAsync(page, "iris-page.png");

        // Two silos in the table and two dots on the ring; the cluster with its member on the first silo.
        Assert.Equal(2, await page.Locator("#silos tbody tr[data-silo]").CountAsync());
        Assert.Equal(2, await page.Locator("#ring circle[data-silo]").CountAsync());
        foreach (var silo in network.SiloAddresses)
        {
            Assert.Equal(1, await page.Locator($"#silos tbody tr[data-silo='{silo}']").CountAsync());
        }

        // Every split with its root silo. A split's rendezvous is active where the ring puts it, from a member's first
        // registration on; while the ring settles it may move to its root (deactivated here, active there again at the
        // member's next renewal), so the page, which refreshes itself, is given until then to show all four.
        var row = page.Locator($"#names tbody tr[data-name='{TwoSiloNetwork.Cluster}']");
        try
        {
            await page.WaitForFunctionAsync(
                "name => { const row = document.querySelector(`#names tbody tr[data-name='${name}']`); return row && row.innerText.includes('1 member') && ['#0', '#1', '#2', '#3'].every(s => row.innerText.includes(s)); }",
                TwoSiloNetwork.Cluster,
                new PageWaitForFunctionOptions { Timeout = 45_000 });
        }
        catch (TimeoutException)
        {
            Assert.Fail($"the page did not show cluster '{TwoSiloNetwork.Cluster}' with its member and four splits within 45 s; its row: {(await row.CountAsync() == 1 ? await row.InnerTextAsync() : "none")}");
        }

        // It refreshes itself: the time it was updated moves on.
        var updated = await page.Locator("#updated").InnerTextAsync();
        await page.WaitForFunctionAsync("before => document.getElementById('updated').textContent !== before", updated, new PageWaitForFunctionOptions { Timeout = 10_000 });

        Assert.True(errors.Count == 0, "script errors: " + string.Join("; ", errors));
    }

    [SkippableFact]
    public async Task In_Chromium_the_Orleans_dashboard_shows_both_silos_without_script_errors()
    {
        // The dashboard's script draws its charts a moment after the page loads, whether or not its first counters
        // have come (then it throws reading them): a node's first answer compiles the dashboard's code, which can take
        // longer than that on a busy machine. Asked here first, the counters answer at once, and list both silos.
        await WaitForDashboardHostsAsync(1);
        await using var browser = await BrowserSession.LaunchAsync();
        var (page, errors) = await OpenAsync(browser.Browser, $"http://127.0.0.1:{network.HttpPorts[1]}/dashboard/#/silos");

        // The silos page lists every host by its address.
        foreach (var silo in network.SiloAddresses)
        {
            var endpoint = silo.Split('@')[0];
            await page.GetByText(endpoint).First.WaitForAsync(new LocatorWaitForOptions { Timeout = 30_000 });
        }

        await ScreenshotAsync(page, "dashboard-silos.png");
        await page.GotoAsync($"http://127.0.0.1:{network.HttpPorts[1]}/dashboard/");
        await page.GetByText("Active Silos").First.WaitForAsync(new LocatorWaitForOptions { Timeout = 30_000 });
        await ScreenshotAsync(page, "dashboard-overview.png");
        Assert.True(errors.Count == 0, "script errors: " + string.Join("; ", errors));
    }

    /// <summary>Asks the dashboard of silo <paramref name="silo"/> for its counters until they list every silo of the
    /// network (30 s at most).</summary>
    private async Task WaitForDashboardHostsAsync(int silo)
    {
        using var http = network.Http(silo);
        await Eventually.HoldsAsync(
            async () =>
            {
                using var counters = JsonDocument.Parse(await http.GetStringAsync("dashboard/DashboardCounters"));
                return counters.RootElement.GetProperty("hosts").GetArrayLength() == network.SiloAddresses.Length;
            },
            $"the dashboard listing all {network.SiloAddresses.Length} silos",
            TimeSpan.FromSeconds(30));
    }

    /// <summary>Opens <paramref name="url"/> in a new page, collecting its uncaught script errors and console errors.</summary>
    private static async Task<(IPage Page, List<string> Errors)> OpenAsync(IBrowser browser, string url)
    {
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 1000 } });
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                errors.Add($"console: {message.Text}");
            }
        };
        var response = await page.GotoAsync(url);
        Assert.Equal(200, response?.Status);
        return (page, errors);
    }

    /// <summary>Saves a screenshot under the test output (<c>screenshots/</c> next to the test assembly).</summary>
    private async Task ScreenshotAsync(IPage page, string name)
    {
        var folder = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, name);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        output.WriteLine($"screenshot: {path}");
    }

    /// <summary>Playwright's driver and one headless Chromium, both closed on dispose.</summary>
    private sealed class BrowserSession(IPlaywright playwright, IBrowser browser) : IAsyncDisposable
    {
        public IBrowser Browser => browser;

        public static async Task<BrowserSession> LaunchAsync()
        {
            Skip.IfNot(File.Exists(Chromium), $"Chromium is not installed at {Chromium} (run test/setup-browser.sh as root, or set IRIS_CHROMIUM): the pages are tested over HTTP only.");
            var playwright = await Playwright.CreateAsync();
            try
            {
                return new BrowserSession(playwright, await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = Chromium, Headless = true, Args = ChromiumFlags }));
            }
            catch
            {
                playwright.Dispose();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await browser.DisposeAsync();
            playwright.Dispose();
        }
    }
}

using Iris.Hosting;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.TestingHost;

namespace Iris.Tests.TestClusters;

/// <summary>A silo that finds itself declared dead in the membership table, written there by another silo: what a
/// silo cut off by a partition finds once the partition heals.</summary>
public sealed class DeclaredDeadTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await IrisTestCluster.DeployAsync(3);

    public async Task DisposeAsync()
    {
        // Ungracefully: the two silos left cannot both leave gracefully (the last one's membership writes need a
        // majority of the table's replicas, which left with the others). The dead silo's host is stopping already, as
        // it should; the test cluster stopping it again can wait on that for minutes, for nothing: it is given a few
        // seconds and then left to finish on its own.
        await _cluster.StopClusterClientAsync();
        foreach (var silo in _cluster.Silos.Take(2).ToList())
        {
            await _cluster.KillSiloAsync(silo);
        }

        try
        {
            await _cluster.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
        }
    }

    [Fact]
    public async Task A_silo_declared_dead_by_another_records_it_and_stops_its_host_while_the_process_and_the_others_go_on()
    {
        var killer = _cluster.Silos[0];
        var victim = _cluster.Silos[2];
        var death = victim.Services().GetRequiredService<SiloDeath>();
        var stopping = victim.Services().GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        Assert.False(death.IsDeclared);

        // The killer writes the victim's row as Dead, through the ring's record, as the majority side of a partition does.
        Assert.True(await killer.Services().GetRequiredService<IClusterMembershipService>().TryKill(victim.SiloAddress), "the killer could not declare the victim dead");

        // The victim learns it at its next read of the table (periodic, every minute; asked for here, as a healed
        // partition's first successful read would). A read already under way may have started before the kill: ask
        // until one has seen it.
        var victimMembership = victim.Services().GetRequiredService<IClusterMembershipService>();
        for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20); !death.IsDeclared && DateTime.UtcNow < deadline;)
        {
            await victimMembership.Refresh();
            await Task.WhenAny(death.Declared, Task.Delay(200));
        }

        Assert.True(death.IsDeclared, "the victim read the table and did not find itself declared dead");
        var reason = await death.Declared;
        Assert.Contains(DeclaredDeadHandler.DeclaredDeadContext, reason, StringComparison.Ordinal);
        await Eventually.HoldsAsync(() => stopping.IsCancellationRequested, "the dead silo's host did not stop");

        // This process (the test host) is still here: no FailFast. The other two silos go on and serve requests.
        var remaining = _cluster.Silos.Take(2).ToList();
        foreach (var silo in remaining)
        {
            var membership = silo.Services().GetRequiredService<IClusterMembershipService>();
            await Eventually.HoldsAsync(
                () => membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active) == 2
                    && membership.CurrentSnapshot.GetSiloStatus(victim.SiloAddress) == SiloStatus.Dead,
                $"silo {silo.SiloAddress} does not see 2 active silos and the victim dead");
            Assert.Equal([7], await silo.Iris().RequestAsync("echo", [7], TimeSpan.FromSeconds(10)));
        }

        Assert.False(remaining.Any(s => s.Services().GetRequiredService<SiloDeath>().IsDeclared), "a silo that was not declared dead thinks it was");
    }
}

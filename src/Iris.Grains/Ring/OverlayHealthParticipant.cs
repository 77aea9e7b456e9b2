namespace Iris.Ring;

/// <summary>
/// Tells Orleans' silo watchdog how the overlay node fares: a silo whose node is not in a ring (it left, or its ring
/// broke apart from under it) reports itself unhealthy, and Orleans logs it and counts it in its own health.
/// </summary>
internal sealed class OverlayHealthParticipant(IrisOverlay overlay) : IHealthCheckParticipant
{
    public bool CheckHealth(DateTime lastCheckTime, out string reason)
    {
        if (overlay.IsInRing)
        {
            reason = string.Empty;
            return true;
        }

        reason = !overlay.IsStarted ? "the overlay node has not started" : "the overlay node is not in a ring";
        return false;
    }
}

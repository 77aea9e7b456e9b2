namespace Iris.Overlay.Kernel;

/// <summary>
/// Work a node decides under its lock and does after releasing it: sends, deliveries to handlers, events. Handlers
/// may call back into the node, and a send may reach another node's lock, so none of it may run while the lock is
/// held. Created per operation, filled under the lock, run once outside it.
/// </summary>
internal sealed class Outbox
{
    private List<Action>? _actions;

    /// <summary>Queues <paramref name="action"/> to run after the lock is released.</summary>
    public void Add(Action action) => (_actions ??= []).Add(action);

    /// <summary>Runs the queued work in the order it was added. A send refused because the node stopped meanwhile is
    /// skipped: there is nothing to send from a stopped node any more.</summary>
    public void Run()
    {
        if (_actions is null)
        {
            return;
        }

        foreach (var action in _actions)
        {
            try
            {
                action();
            }
            catch (OverlayNodeStoppedException)
            {
                // The node stopped meanwhile.
            }
        }
    }
}

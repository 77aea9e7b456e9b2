using Iris.Overlay.Transport;

namespace Iris.Overlay.Scribe;

// Dissemination: a multicast from the root down every edge of the tree, once per message, to every local member.
internal sealed partial class ScribeNode
{
    private void Disseminate(GroupState state, ScribeMessage message, NodeHandle? from, Outbox outbox)
    {
        if (!_seen.Add(message.Id))
        {
            return;
        }

        foreach (var member in state.Members.Keys)
        {
            var name = member;
            outbox.Add(() => _handler.OnMulticast(message.Group, name, message.Id, message.Payload, message.Origin));
        }

        var data = message.Type == ScribeMessageType.Data ? message : message with { Type = ScribeMessageType.Data };
        foreach (var child in state.Children.Values)
        {
            if (from is null || child.Node.Key != from.Value.Key)
            {
                Send(child.Node, data, reliable: true, outbox);
            }
        }
    }
}

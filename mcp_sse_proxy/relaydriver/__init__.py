"""The anyio side of one relay: what carries out the `relaycore` actions (`relay.Relay` puts it together).

`sender.Sender` sends upstream (the outbox in client order, one concurrency slot per request), `timer.Timer`
is the relay's one timer, `connector.Connector` connects, reconnects, replays the session and pings.
"""

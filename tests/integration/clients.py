"""Client-side callbacks the integration tests give the SDK's `ClientSession` (sampling, elicitation,
roots), shared by every test module that drives the proxy as a client would."""

from __future__ import annotations

import mcp_types as types
from mcp.client.session import ClientRequestContext


async def sampling_callback(
    context: ClientRequestContext, params: types.CreateMessageRequestParams
) -> types.CreateMessageResult:
    content = params.messages[0].content
    text = content.text if isinstance(content, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"sampled:{text}"), model="test-model"
    )


async def elicitation_callback(
    context: ClientRequestContext, params: types.ElicitRequestParams
) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"answer": "yes"})


async def list_roots_callback(context: ClientRequestContext) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///workspace")])

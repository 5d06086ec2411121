"""The faust workarounds of streams.faust_compat, on faust's own flow-control objects."""

from __future__ import annotations

import asyncio

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from streams.faust_compat import keep_queued_on_resume


def test_resuming_a_running_flow_keeps_queued_messages() -> None:
    async def scenario() -> tuple[int, int, int]:
        flow = FlowControlEvent()
        keep_queued_on_resume(flow)
        queue: FlowControlQueue[int] = FlowControlQueue(
            maxsize=10, flow_control=flow, clear_on_resume=True
        )
        flow.resume()
        await queue.put(1)
        await queue.put(2)
        flow.resume()  # already running: what was fetched and queued must stay
        kept = queue.qsize()
        flow.suspend()  # a rebalance: what is queued now was fetched before it
        flow.resume()
        after_suspend = queue.qsize()
        await queue.put(3)
        return kept, after_suspend, queue.qsize()

    kept, after_suspend, refilled = asyncio.run(scenario())
    assert kept == 2
    assert after_suspend == 0
    assert refilled == 1

"""The Keepa deals collector: clock-free, network-free logic.

Tasks are ``async def`` coroutines that get time, sleep, API calls and task
spawning only from the `Runtime` they are handed (``collector.runtime``).
``sim.runtime`` drives them on a SimPy virtual clock; ``collector.live`` drives
the very same coroutines with asyncio on a real clock.
"""

"""High-frequency subscriber: deltas and pure deltas.

The class `HighFreqStrategy` below is the original plan's usage example, unchanged but for the
connection URL (NATS_URL, from the environment). The plan left some of its helper
methods undefined; `RunnableHighFreqStrategy` fills them in so the example runs end to end.
"""

import json
import os

from nats.aio.client import Client as NATS

NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")

class HighFreqStrategy:
    def __init__(self):
        self.nc = NATS()
        self.js = None
        self.local_orderbook = {}
        
    async def start(self):
        await self.nc.connect(NATS_URL)
        self.js = self.nc.jetstream()
        
        # 订阅增量更新流
        await self.js.subscribe(
            subject="orderbook.delta.*.btc-usdt",
            cb=self.handle_delta_update,
            stream="ORDERBOOK_DELTA",
            durable="hft_delta_consumer"
        )
        
        # 订阅纯增量流 (只关心变化)
        await self.js.subscribe(
            subject="orderbook.pure_delta.*.btc-usdt",
            cb=self.handle_pure_delta,
            stream="ORDERBOOK_DELTA",
            durable="hft_pure_delta_consumer"
        )
    
    async def handle_delta_update(self, msg):
        """处理增量更新"""
        data = json.loads(msg.data.decode())
        
        # 应用增量更新到本地订单簿
        await self.apply_delta_to_local_book(data)
        
        # 检测价格跳跃
        if await self.detect_price_jump(data):
            await self.execute_momentum_strategy(data)
        
        await msg.ack()
    
    async def handle_pure_delta(self, msg):
        """处理纯增量变化"""
        data = json.loads(msg.data.decode())
        
        # 分析订单流
        bid_pressure = sum(float(level['quantity']) for level in data['bid_updates'])
        ask_pressure = sum(float(level['quantity']) for level in data['ask_updates'])
        
        # 订单流不平衡策略
        if bid_pressure > ask_pressure * 2:
            await self.execute_order_flow_strategy("buy", data)
        elif ask_pressure > bid_pressure * 2:
            await self.execute_order_flow_strategy("sell", data)
        
        await msg.ack()


import asyncio  # noqa: E402  (the plan's class above relies on the names imported at the top)


class RunnableHighFreqStrategy(HighFreqStrategy):
    """The plan's high-frequency strategy with its helpers filled in: a local top of book
    kept from `orderbook.delta` updates, jump detection and order-flow signals."""

    def __init__(self):
        super().__init__()
        self.updates_seen = 0
        self.pure_deltas_seen = 0
        self.signals = {"momentum": 0, "buy": 0, "sell": 0}
        self.last_mid = None

    async def handle_pure_delta(self, msg):
        self.pure_deltas_seen += 1
        await super().handle_pure_delta(msg)

    async def apply_delta_to_local_book(self, data):
        self.updates_seen += 1
        book = self.local_orderbook.setdefault(data["exchange_name"], {"bids": {}, "asks": {}})
        for side, changes in (("bids", data["bid_changes"]), ("asks", data["ask_changes"])):
            for level in changes:
                if float(level["quantity"]) == 0:
                    book[side].pop(level["price"], None)
                else:
                    book[side][level["price"]] = level["quantity"]

    async def detect_price_jump(self, data):
        if not data["bids"] or not data["asks"]:
            return False
        mid = (float(data["bids"][0]["price"]) + float(data["asks"][0]["price"])) / 2
        jumped = self.last_mid is not None and abs(mid - self.last_mid) / self.last_mid > 0.0005
        self.last_mid = mid
        return jumped

    async def execute_momentum_strategy(self, data):
        self.signals["momentum"] += 1

    async def execute_order_flow_strategy(self, side, data):
        self.signals[side] += 1


async def main(seconds: float = 10.0) -> RunnableHighFreqStrategy:
    strategy = RunnableHighFreqStrategy()
    await strategy.start()
    await asyncio.sleep(seconds)
    await strategy.nc.close()
    print(f"updates {strategy.updates_seen}, pure deltas {strategy.pure_deltas_seen}, signals {strategy.signals}")
    return strategy


if __name__ == "__main__":
    asyncio.run(main(float(os.environ.get("RUN_SECONDS", "10"))))

"""Strategy-layer subscriber: full books and periodic snapshots.

The class `QuantStrategy` below is the original plan's usage example, unchanged but for the
connection URL (NATS_URL, from the environment). The plan left some of its helper
methods undefined; `RunnableQuantStrategy` fills them in so the example runs end to end.
"""

import json
import os

from nats.aio.client import Client as NATS

NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")

# 策略层订阅全量订单簿
import asyncio
from nats.aio.client import Client as NATS
import json

class QuantStrategy:
    def __init__(self):
        self.nc = NATS()
        self.js = None
        
    async def start(self):
        await self.nc.connect(NATS_URL)
        self.js = self.nc.jetstream()
        
        # 订阅全量订单簿流
        await self.js.subscribe(
            subject="orderbook.full.binance.btc-usdt",
            cb=self.handle_full_orderbook,
            stream="ORDERBOOK_FULL",
            durable="strategy_full_consumer"
        )
        
        # 订阅快照流 (定期完整状态)
        await self.js.subscribe(
            subject="orderbook.snapshot.*.btc-usdt",
            cb=self.handle_snapshot,
            stream="ORDERBOOK_FULL", 
            durable="strategy_snapshot_consumer"
        )
    
    async def handle_full_orderbook(self, msg):
        """处理全量订单簿数据"""
        data = json.loads(msg.data.decode())
        
        # 获取最佳买卖价
        best_bid = max(data['bids'], key=lambda x: float(x['price']))
        best_ask = min(data['asks'], key=lambda x: float(x['price']))
        
        spread = float(best_ask['price']) - float(best_bid['price'])
        
        # 策略逻辑
        if spread < 0.01:  # 价差小于1美分
            await self.execute_arbitrage_strategy(data)
        
        await msg.ack()
    
    async def handle_snapshot(self, msg):
        """处理定期快照"""
        data = json.loads(msg.data.decode())
        
        # 更新本地订单簿状态
        await self.update_local_orderbook(data)
        await msg.ack()


class RunnableQuantStrategy(QuantStrategy):
    """The plan's strategy with its undefined helpers filled in: it keeps the latest book."""

    def __init__(self):
        super().__init__()
        self.books_seen = 0
        self.snapshots_seen = 0
        self.arbitrage_signals = 0
        self.local_orderbook = None

    async def handle_full_orderbook(self, msg):
        self.books_seen += 1
        await super().handle_full_orderbook(msg)

    async def execute_arbitrage_strategy(self, data):
        self.arbitrage_signals += 1

    async def update_local_orderbook(self, data):
        self.snapshots_seen += 1
        self.local_orderbook = data


async def main(seconds: float = 10.0) -> RunnableQuantStrategy:
    strategy = RunnableQuantStrategy()
    await strategy.start()
    await asyncio.sleep(seconds)
    await strategy.nc.close()
    print(f"full books {strategy.books_seen}, snapshots {strategy.snapshots_seen}, "
          f"tight-spread signals {strategy.arbitrage_signals}")
    return strategy


if __name__ == "__main__":
    asyncio.run(main(float(os.environ.get("RUN_SECONDS", "10"))))

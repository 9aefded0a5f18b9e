"""Deep-learning feature extraction: full-book features, book images, incremental features.

The classes `OrderBookFeatureExtractor` and `IncrementalFeatureExtractor` below are the original plan's usage example, unchanged but for the
connection URL (NATS_URL, from the environment). The plan left some of its helper
methods undefined; the `Runnable...` subclasses fill them in so the example runs end to end.
"""

import json
import os

from nats.aio.client import Client as NATS

NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")

import numpy as np
from typing import List, Dict
import asyncio

class OrderBookFeatureExtractor:
    def __init__(self):
        self.nc = NATS()
        self.js = None
        self.feature_buffer = []
        self.max_buffer_size = 1000
        
    async def start(self):
        await self.nc.connect(NATS_URL)
        self.js = self.nc.jetstream()
        
        # 订阅全量订单簿用于特征提取
        await self.js.subscribe(
            subject="orderbook.full.*.btc-usdt",
            cb=self.extract_full_features,
            stream="ORDERBOOK_FULL",
            durable="ml_full_feature_consumer"
        )
        
        # 订阅快照用于图像化
        await self.js.subscribe(
            subject="orderbook.snapshot.*.btc-usdt",
            cb=self.create_orderbook_image,
            stream="ORDERBOOK_FULL",
            durable="ml_image_consumer"
        )
    
    async def extract_full_features(self, msg):
        """提取全量订单簿特征"""
        data = json.loads(msg.data.decode())
        
        # 1. 价格分布特征
        price_features = self.extract_price_distribution(data)
        
        # 2. 量价关系特征
        volume_features = self.extract_volume_profile(data)
        
        # 3. 市场微观结构特征
        microstructure_features = self.extract_microstructure(data)
        
        # 4. 流动性特征
        liquidity_features = self.extract_liquidity_metrics(data)
        
        # 合并特征
        features = {
            'timestamp': data['timestamp'],
            'exchange': data['exchange_name'],
            'symbol': data['symbol_name'],
            'price_features': price_features,
            'volume_features': volume_features,
            'microstructure_features': microstructure_features,
            'liquidity_features': liquidity_features
        }
        
        # 添加到缓冲区
        self.feature_buffer.append(features)
        
        # 批量处理
        if len(self.feature_buffer) >= self.max_buffer_size:
            await self.process_feature_batch()
        
        await msg.ack()
    
    async def create_orderbook_image(self, msg):
        """创建订单簿图像"""
        data = json.loads(msg.data.decode())
        
        # 转换为2D图像 (价格档位 x 买卖方向)
        image = self.orderbook_to_image(data)
        
        # 保存图像数据
        await self.save_orderbook_image(image, data['timestamp'])
        
        await msg.ack()
    
    def extract_price_distribution(self, orderbook: Dict) -> Dict:
        """提取价格分布特征"""
        bids = [float(level['price']) for level in orderbook['bids']]
        asks = [float(level['price']) for level in orderbook['asks']]
        
        if not bids or not asks:
            return {}
        
        best_bid = max(bids)
        best_ask = min(asks)
        mid_price = (best_bid + best_ask) / 2
        
        return {
            'spread': best_ask - best_bid,
            'spread_bps': (best_ask - best_bid) / mid_price * 10000,
            'mid_price': mid_price,
            'bid_depth': len(bids),
            'ask_depth': len(asks),
            'price_range': max(asks) - min(bids) if asks and bids else 0
        }
    
    def extract_volume_profile(self, orderbook: Dict) -> Dict:
        """提取量价关系特征"""
        bid_volumes = [float(level['quantity']) for level in orderbook['bids']]
        ask_volumes = [float(level['quantity']) for level in orderbook['asks']]
        
        return {
            'total_bid_volume': sum(bid_volumes),
            'total_ask_volume': sum(ask_volumes),
            'volume_imbalance': (sum(bid_volumes) - sum(ask_volumes)) / (sum(bid_volumes) + sum(ask_volumes)) if bid_volumes or ask_volumes else 0,
            'avg_bid_size': np.mean(bid_volumes) if bid_volumes else 0,
            'avg_ask_size': np.mean(ask_volumes) if ask_volumes else 0,
            'volume_concentration': self.calculate_volume_concentration(bid_volumes + ask_volumes)
        }
    
    def orderbook_to_image(self, orderbook: Dict, depth: int = 50) -> np.ndarray:
        """将订单簿转换为图像"""
        # 创建 depth x 2 的图像 (深度 x 买卖方向)
        image = np.zeros((depth, 2))
        
        # 填充买单数据
        for i, bid in enumerate(orderbook['bids'][:depth]):
            image[i, 0] = float(bid['quantity'])
        
        # 填充卖单数据
        for i, ask in enumerate(orderbook['asks'][:depth]):
            image[i, 1] = float(ask['quantity'])
        
        # 归一化
        if image.max() > 0:
            image = image / image.max()
        
        return image

class IncrementalFeatureExtractor:
    def __init__(self):
        self.nc = NATS()
        self.js = None
        self.delta_history = []
        self.window_size = 100
        
    async def start(self):
        await self.nc.connect(NATS_URL)
        self.js = self.nc.jetstream()
        
        # 订阅纯增量流
        await self.js.subscribe(
            subject="orderbook.pure_delta.*.btc-usdt",
            cb=self.extract_delta_features,
            stream="ORDERBOOK_DELTA",
            durable="ml_delta_feature_consumer"
        )
    
    async def extract_delta_features(self, msg):
        """提取增量特征"""
        data = json.loads(msg.data.decode())
        
        # 1. 订单流特征
        flow_features = self.extract_order_flow_features(data)
        
        # 2. 价格冲击特征
        impact_features = self.extract_price_impact_features(data)
        
        # 3. 时序特征
        temporal_features = self.extract_temporal_features(data)
        
        delta_features = {
            'timestamp': data['timestamp'],
            'update_id': data['update_id'],
            'flow_features': flow_features,
            'impact_features': impact_features,
            'temporal_features': temporal_features
        }
        
        # 维护滑动窗口
        self.delta_history.append(delta_features)
        if len(self.delta_history) > self.window_size:
            self.delta_history.pop(0)
        
        # 实时预测
        if len(self.delta_history) >= 10:  # 最少需要10个增量
            prediction = await self.predict_next_move()
            await self.publish_prediction(prediction)
        
        await msg.ack()
    
    def extract_order_flow_features(self, delta: Dict) -> Dict:
        """提取订单流特征"""
        bid_updates = delta.get('bid_updates', [])
        ask_updates = delta.get('ask_updates', [])
        
        bid_flow = sum(float(update['quantity']) for update in bid_updates)
        ask_flow = sum(float(update['quantity']) for update in ask_updates)
        
        return {
            'bid_flow': bid_flow,
            'ask_flow': ask_flow,
            'net_flow': bid_flow - ask_flow,
            'flow_ratio': bid_flow / ask_flow if ask_flow > 0 else float('inf'),
            'update_count': len(bid_updates) + len(ask_updates),
            'bid_update_count': len(bid_updates),
            'ask_update_count': len(ask_updates)
        }
    
    async def predict_next_move(self) -> Dict:
        """基于增量历史预测下一步价格走向"""
        # 简化的预测逻辑
        recent_flows = [delta['flow_features']['net_flow'] for delta in self.delta_history[-10:]]
        
        # 计算流量趋势
        flow_trend = np.mean(recent_flows)
        flow_momentum = np.mean(recent_flows[-3:]) - np.mean(recent_flows[-10:-3])
        
        # 简单的预测规则
        if flow_trend > 0 and flow_momentum > 0:
            prediction = "UP"
            confidence = min(abs(flow_momentum) / 1000, 1.0)
        elif flow_trend < 0 and flow_momentum < 0:
            prediction = "DOWN"
            confidence = min(abs(flow_momentum) / 1000, 1.0)
        else:
            prediction = "SIDEWAYS"
            confidence = 0.5
        
        return {
            'prediction': prediction,
            'confidence': confidence,
            'flow_trend': flow_trend,
            'flow_momentum': flow_momentum,
            'timestamp': self.delta_history[-1]['timestamp']
        }


class RunnableOrderBookFeatureExtractor(OrderBookFeatureExtractor):
    """The plan's full-book feature extractor with its helpers filled in."""

    def __init__(self):
        super().__init__()
        self.batches = []
        self.images = []

    def extract_microstructure(self, orderbook: Dict) -> Dict:
        bids, asks = orderbook["bids"], orderbook["asks"]
        if not bids or not asks:
            return {}
        bid_size, ask_size = float(bids[0]["quantity"]), float(asks[0]["quantity"])
        return {"top_imbalance": (bid_size - ask_size) / (bid_size + ask_size)}

    def extract_liquidity_metrics(self, orderbook: Dict) -> Dict:
        return {
            "bid_notional_top10": sum(float(l["price"]) * float(l["quantity"]) for l in orderbook["bids"][:10]),
            "ask_notional_top10": sum(float(l["price"]) * float(l["quantity"]) for l in orderbook["asks"][:10]),
        }

    def calculate_volume_concentration(self, volumes: List[float]) -> float:
        total = sum(volumes)
        return sum((v / total) ** 2 for v in volumes) if total else 0.0

    async def process_feature_batch(self):
        self.batches.append(self.feature_buffer)
        self.feature_buffer = []

    async def save_orderbook_image(self, image, timestamp):
        self.images.append((timestamp, image))


class RunnableIncrementalFeatureExtractor(IncrementalFeatureExtractor):
    """The plan's incremental feature extractor with its helpers filled in."""

    def __init__(self):
        super().__init__()
        self.predictions = []

    def extract_price_impact_features(self, delta: Dict) -> Dict:
        prices = [float(u["price"]) for u in delta.get("bid_updates", []) + delta.get("ask_updates", [])]
        return {"price_span": max(prices) - min(prices) if prices else 0.0}

    def extract_temporal_features(self, delta: Dict) -> Dict:
        return {"timestamp": delta["timestamp"], "collected_at": delta["collected_at"]}

    async def publish_prediction(self, prediction):
        self.predictions.append(prediction)


async def main(seconds: float = 10.0):
    full, incremental = RunnableOrderBookFeatureExtractor(), RunnableIncrementalFeatureExtractor()
    await full.start()
    await incremental.start()
    await asyncio.sleep(seconds)
    await full.nc.close()
    await incremental.nc.close()
    print(f"full-book features {len(full.feature_buffer) + sum(map(len, full.batches))}, images {len(full.images)}, "
          f"deltas {len(incremental.delta_history)}, predictions {len(incremental.predictions)}")
    return full, incremental


if __name__ == "__main__":
    asyncio.run(main(float(os.environ.get("RUN_SECONDS", "10"))))

"""Health check and the landing page."""

from __future__ import annotations

import html
import os

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from exchange.api.deps import SnapshotDep
from exchange.api.schemas.common import error_responses
from exchange.api.schemas.health import Health

router = APIRouter(tags=["health"])

EXAMPLE_ID = "11010519491231002X"  # GB 11643's own example number


@router.get("/healthz", response_model=Health, responses=error_responses(503))
def healthz(snap: SnapshotDep) -> Health:
    """Service health and the snapshot being served."""
    return Health(status="ok", snapshot_id=snap.snapshot_id, built_at=snap.built_at,
                  snapshot_file=snap.name, counts=snap.index.counts(), worker=os.getpid())


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>一窗受理数据共享与电子证照枢纽</title>
<style>
body{{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;max-width:46rem;
margin:2rem auto;padding:0 1rem;line-height:1.7;color:#1f2933}}
h1{{font-size:1.5rem;border-bottom:3px solid #c0392b;padding-bottom:.4rem}}
code{{background:#f3f4f6;padding:0 .25rem}} .note{{color:#7b8794;font-size:.9rem}}
.warn{{background:#fff4e5;border-left:4px solid #e67e22;padding:.5rem .8rem}}
</style></head><body>
<h1>一窗受理 · 数据共享与电子证照枢纽</h1>
<p>当前快照：{snapshot}</p>
{warning}
<h2>从这里开始</h2>
<ul>
<li><a href="/docs">接口文档（OpenAPI / Swagger UI）</a>——全部接口可在线试用</li>
<li><a href="/api/v1/items">政务服务事项清单</a>——每个事项的申请材料（GB/T 39554）</li>
<li><a href="/api/v1/subjects/{example}/certificates">示例查询：持证主体的电子证照</a>
（<code>{example_masked}</code>）</li>
<li>一次提交核验：<code>POST /api/v1/once-only</code>，告诉窗口人员哪些材料已在证照库、哪些仍需提交</li>
<li>证照核验：<code>POST /api/v1/verify</code>，核验电子证照签名、状态与有效期</li>
<li><a href="/healthz">服务状态</a></li>
</ul>
<p class="note">OneWindow Hub · 证照数据只读快照服务，个人身份号码在日志中脱敏记录。</p>
</body></html>
"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def landing(request: Request) -> HTMLResponse:
    """Chinese landing page listing what to open."""
    from quality.standards import mask_identifier

    store = request.app.state.snapshots
    store.refresh()
    snap = store.current
    settings = request.app.state.settings
    example = EXAMPLE_ID
    if snap is not None and settings.is_development:
        example = snap.index.example_holder() or EXAMPLE_ID
    if snap is None:
        snapshot = "无"
        warning = ('<p class="warn">尚无可用的证照库快照：请先运行数据管道（建库步骤会发布 '
                   '<code>snapshots/CURRENT</code>），服务会自动加载，无需重启。</p>')
    else:
        snapshot = html.escape(f"{snap.snapshot_id}（生成于 {snap.built_at}）")
        warning = ""
    return HTMLResponse(_PAGE.format(snapshot=snapshot, warning=warning,
                                     example=html.escape(example),
                                     example_masked=html.escape(mask_identifier(example))))

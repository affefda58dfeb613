"""Printable copy of a licence: one self-contained HTML page with a QR code (segno, inline SVG).

The QR code holds the URL of the verify page for the licence (short enough for a
phone camera; the token itself is 1–2 KB). Nothing is fetched from a CDN.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from certificates.model import CHINESE_NAMES, STATUS_CODES

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",serif;max-width:44rem;margin:1.5rem auto;
padding:0 1rem;color:#1f2933}} h1{{text-align:center;font-size:1.6rem;letter-spacing:.3rem;
border-bottom:3px double #c0392b;padding-bottom:.5rem}} table{{width:100%;border-collapse:collapse}}
th{{text-align:left;width:9rem;color:#52606d;font-weight:normal}} th,td{{padding:.3rem .4rem;
border-bottom:1px solid #e4e7eb;vertical-align:top}} .qr{{text-align:center;margin-top:1rem}}
.qr svg{{width:9rem;height:9rem}} .note{{color:#7b8794;font-size:.85rem;text-align:center}}
code{{word-break:break-all;font-size:.8rem}} @media print{{.note a{{color:inherit}}}}
</style></head><body>
<h1>{title}</h1>
<table>
{rows}
</table>
<div class="qr">{qr}</div>
<p class="note">扫描二维码或访问 <a href="{url}">{url_text}</a> 核验本证照的签名与当前状态。</p>
<p class="note">证照标识 <code>{licence_id}</code></p>
</body></html>
"""


def qr_svg(data: str) -> str:
    """An inline SVG QR code (error correction M) for ``data``."""
    import segno

    return segno.make(data, error="m", micro=False).svg_inline(scale=4, border=2)


def _rows(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    holder = payload.get("holder") or {}
    issuer = payload.get("issuer") or {}
    until = payload.get("valid_until") or "长期"
    status = str(payload.get("status") or "")
    return [
        (CHINESE_NAMES["number"], str(payload.get("number", ""))),
        (CHINESE_NAMES["holder.name"], str(holder.get("name", ""))),
        (CHINESE_NAMES["holder.code"], str(holder.get("code", ""))),
        (CHINESE_NAMES["issuer.name"], str(issuer.get("name", ""))),
        (CHINESE_NAMES["issue_date"], str(payload.get("issue_date", ""))),
        ("有效期", f"{payload.get('valid_from', '')} 至 {until}"),
        (CHINESE_NAMES["version"], str(payload.get("version", ""))),
        ("签发时状态", STATUS_CODES.get(status, status)),
    ] + [(f"{k}", str(v)) for k, v in sorted((payload.get("extension") or {}).items())]


def render_licence_html(payload: Mapping[str, Any], *, verify_url: str) -> str:
    """The printable HTML copy of a licence payload; the QR code points at ``verify_url``."""
    rows = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in _rows(payload))
    return _PAGE.format(title=html.escape(str(payload.get("name", "电子证照"))), rows=rows,
                        qr=qr_svg(verify_url), url=html.escape(verify_url, quote=True),
                        url_text=html.escape(verify_url), licence_id=html.escape(str(payload.get("licence_id", ""))))

"""Screenshot Airflow UI pages in headless Chromium, logged in (for the README and for checking the UI).

    .venv/bin/python scripts/screenshot.py URL OUT.png [--user admin] [--wait 8] [--width 1600 --height 1000]

Logs in through Airflow's /auth/token with the generated password, sets the UI's `_token` cookie
through the Chrome DevTools Protocol, loads the page and captures it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def token(base: str, user: str) -> str:
    passwords = json.loads((ROOT / ".airflow" / "simple_auth_manager_passwords.json.generated").read_text())
    req = urllib.request.Request(f"{base}/auth/token", method="POST",
                                 data=json.dumps({"username": user, "password": passwords[user]}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())["access_token"]


async def capture(url: str, out: Path, user: str, wait: float, width: int, height: int) -> None:
    import websockets

    base = "/".join(url.split("/")[:3])
    jwt = token(base, user)
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                                 "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-port=9333",
                                 f"--window-size={width},{height}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(50):
                try:
                    with urllib.request.urlopen("http://127.0.0.1:9333/json") as resp:
                        pages = [p for p in json.loads(resp.read()) if p["type"] == "page"]
                    if pages:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            async with websockets.connect(pages[0]["webSocketDebuggerUrl"], max_size=50_000_000) as ws:
                counter = 0

                async def send(method: str, **params: object) -> dict:
                    nonlocal counter
                    counter += 1
                    await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
                    while True:
                        msg = json.loads(await ws.recv())
                        if msg.get("id") == counter:
                            return msg.get("result", {})

                await send("Network.enable")
                await send("Network.setCookie", name="_token", value=jwt, url=base, path="/")
                await send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                           mobile=False)
                await send("Page.navigate", url=url)
                await asyncio.sleep(wait)
                shot = await send("Page.captureScreenshot", format="png")
                out.write_bytes(base64.b64decode(shot["data"]))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--wait", type=float, default=8.0)
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(capture(args.url, args.out, args.user, args.wait, args.width, args.height))
    print(args.out)


if __name__ == "__main__":
    main()

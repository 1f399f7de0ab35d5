// The web page in a real browser: Debian's Chromium, headless, driven by playwright-core, against
// the rehearsal's APIs (scripts/deploy-emulator.sh, step "browser").
//
//   node browser/test.mjs FRONT_JSON SCREENSHOT_PNG
//
// Two pages, alex and kate, each served by and signed in at their home region's front door
// (GET /), each with its own socket: each sees the other's messages live; alex sees `chicken?`
// after writing to moebi, marked as a reply; a bad recipient is shown as the API words it; a page
// whose socket dropped catches up after reconnecting, showing what it missed exactly once. Then
// a screenshot of the two pages side by side.
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [frontFile, shot] = process.argv.slice(2);
const front = JSON.parse(readFileSync(frontFile, "utf8"));
const stamp = Date.now().toString(36);
const failures = [];
const fail = (m) => { failures.push(m); console.log("  FAILED: " + m); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // This machine's network is closed: no background connections, no component updates.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});

async function open(who) {
  const context = await browser.newContext({ viewport: { width: 560, height: 640 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => fail(who + "'s page: " + e.message));
  const url = front.users[who].api + "/";
  await page.goto(url);
  await page.fill("#signin [name=user]", who);
  await page.fill("#signin [name=password]", front.users[who].password);
  await page.click("#signin button");
  await page.waitForSelector("#status.live", { timeout: 20000 });
  console.log("  %s: %s — %s", who, url, await page.textContent("#status"));
  return page;
}

async function send(page, to, text) {
  await page.fill("#send [name=to]", to);
  await page.fill("#send [name=text]", text);
  await page.click("#send button");
  // The page clears the text once the API took it (202), or shows the API's refusal.
  await page.waitForFunction(() => document.querySelector("#send [name=text]").value === "" || document.getElementById("error").textContent,
    null, { timeout: 20000 });
}

// Waits until `page` shows an entry with `text`; answers how many entries show it.
async function shows(page, who, text, timeout = 20000) {
  try {
    await page.waitForFunction((t) => [...document.querySelectorAll("#inbox li")].some((li) => li.textContent.includes(t)), text, { timeout });
  } catch (_) {
    fail(`${who}'s page never showed ${JSON.stringify(text)}`);
    return 0;
  }
  return page.evaluate((t) => [...document.querySelectorAll("#inbox li")].filter((li) => li.textContent.includes(t)).length, text);
}

try {
  const alex = await open("alex");
  const kate = await open("kate");

  await send(alex, "kate", "hi kate, live " + stamp);
  if (await shows(kate, "kate", "hi kate, live " + stamp)) console.log("  kate's page shows alex's message, pushed");
  await send(kate, "alex", "hi alex, live " + stamp);
  if (await shows(alex, "alex", "hi alex, live " + stamp)) console.log("  alex's page shows kate's message, pushed");

  await send(alex, "moebi", "who is a good dog " + stamp);
  await shows(alex, "alex", "chicken?");
  const replies = await alex.evaluate(() => [...document.querySelectorAll("#inbox li.reply")].map((li) => li.textContent));
  if (!replies.some((t) => t.includes("moebi: chicken?") && t.includes("reply"))) fail("alex's page: no chicken? marked as a reply: " + JSON.stringify(replies));
  else console.log("  alex's page shows moebi's answer, marked: %s", replies.find((t) => t.includes("chicken?")));

  await send(alex, "nobody", "hello?");
  await alex.waitForFunction(() => document.getElementById("error").textContent.length > 0, null, { timeout: 10000 }).catch(() => {});
  const refused = await alex.textContent("#error");
  if (!refused.includes("nobody")) fail("a message to nobody: the page shows " + JSON.stringify(refused));
  else console.log("  alex writing to nobody: the page shows the API's words: %s", refused);

  // kate's socket drops for 5 s; alex writes twice meanwhile; kate's page catches up once.
  await kate.evaluate(() => window.moebi.drop(5000));
  await kate.waitForFunction(() => !document.getElementById("status").classList.contains("live"), null, { timeout: 5000 });
  console.log("  kate's socket dropped: %s", await kate.textContent("#status"));
  await send(alex, "kate", "while you were away " + stamp);
  await send(alex, "kate", "and once more " + stamp);
  await kate.waitForSelector("#status.live", { timeout: 30000 });
  const missed = [await shows(kate, "kate", "while you were away " + stamp), await shows(kate, "kate", "and once more " + stamp)];
  if (missed.some((n) => n !== 1)) fail("kate's page after reconnecting shows the missed messages " + missed + " times, want once each");
  else console.log("  kate's page reconnected (%s) and caught up: each missed message shown once", await kate.textContent("#status"));

  // The two pages side by side.
  const [a, k] = [await alex.screenshot(), await kate.screenshot()];
  const board = await (await browser.newContext({ viewport: { width: 1140, height: 660 } })).newPage();
  await board.setContent(`<body style="margin:10px;display:flex;gap:20px;background:#ddd">
    <img src="data:image/png;base64,${a.toString("base64")}"><img src="data:image/png;base64,${k.toString("base64")}"></body>`);
  await board.screenshot({ path: shot });
  console.log("  screenshot of the two pages: %s", shot);
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
}
if (failures.length) {
  console.log("browser: %d failed", failures.length);
  process.exit(1);
}

// The official JS SDK (@hopx-ai/sdk) against `hopx-kernel serve`: one JSON line per method,
// {"method", "ok", "result"}. Run by tests/server/test_sdk_conformance_js.py.
const { Sandbox } = require("@hopx-ai/sdk");

const baseURL = process.env.HOPX_BASE_URL;
const apiKey = process.env.HOPX_API_KEY;
const rows = [];
function row(method, ok, result) {
  rows.push({ method, ok, result: String(result) });
}
async function check(method, fn) {
  try {
    row(method, true, await fn());
  } catch (err) {
    row(method, false, `${err && err.name}: ${err && err.message}`);
  }
}
function expect(cond, what) {
  if (!cond) throw new Error(`expected ${what}`);
}
function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((r) => setTimeout(() => r("__timeout__"), ms))]);
}

(async () => {
  await check("Sandbox.create(unknown template)", async () => {
    try {
      await Sandbox.create({ template: "no-such-template", apiKey, baseURL });
    } catch (err) {
      expect(err.name !== "SandboxExpiredError", `not SandboxExpiredError, got ${err.name}`);
      expect(err.statusCode === 404 || /404|unknown template/.test(err.message), "a 404");
      return `${err.name}: ${err.message}`;
    }
    throw new Error("created a sandbox from an unknown template");
  });
  const sb = await Sandbox.create({ template: "code-interpreter", apiKey, baseURL });
  row("Sandbox.create", true, sb.sandboxId);
  await check("getInfo", async () => (await sb.getInfo()).status);
  await check("getAgentInfo (/info)", async () => {
    const info = await sb.getAgentInfo();
    expect(info.agent === "hopx-kernel-local", "agent hopx-kernel-local");
    return info.agent_version;
  });
  await check("runCode", async () => {
    const r = await sb.runCode("x = 6 * 7\nprint(x)");
    expect(r.stdout === "42\n", "stdout 42");
    return "stdout 42";
  });
  await check("runCode (exception)", async () => {
    const r = await sb.runCode("print('before'); 1/0");
    expect(!r.success && r.stderr.includes("ZeroDivisionError"), "traceback in stderr");
    return "success false, traceback in stderr";
  });
  await check("runCode (timeout)", async () => {
    try {
      await sb.runCode("print('partial', flush=True)\nimport time\ntime.sleep(10)", { timeout: 1 });
    } catch (err) {
      expect(/timeout/.test(err.message) && !/status code 408/.test(err.message), "the agent's message");
      return `${err.name}: ${err.message}`;
    }
    throw new Error("no error on timeout");
  });
  await check("commands.run", async () => {
    const r = await sb.commands.run("echo hi; echo err >&2; exit 3");
    expect(r.stdout === "hi\n" && r.stderr === "err\n" && r.exit_code === 3, "stdout/stderr/exit 3");
    return "stdout/stderr/exit_code 3";
  });
  await check("commands.run(workingDir /tmp, env)", async () => {
    const r = await sb.commands.run("echo $G", { workingDir: "/tmp", env: { G: "hey" } });
    expect(r.stdout === "hey\n", "hey");
    return "hey";
  });
  await check("commands.runBackground", async () => (await sb.commands.runBackground("sleep 30")).process_id);
  await check("runCodeBackground + listProcesses + killProcess", async () => {
    const bg = await sb.runCodeBackground("import time; time.sleep(30)");
    const listed = await sb.listProcesses();
    expect(listed.some((p) => p.process_id === bg.process_id), "listed");
    await sb.killProcess(bg.process_id);
    try {
      await sb.killProcess(bg.process_id);
    } catch (err) {
      return `killed; second kill: ${err.name}`;
    }
    throw new Error("second kill did not fail");
  });
  await check("files write/read/list/exists/remove", async () => {
    await sb.files.write("/workspace/d/a.txt", "héllo");
    expect((await sb.files.read("/workspace/d/a.txt")) === "héllo", "read back");
    const listed = await sb.files.list("/workspace/d");
    expect(listed.length === 1 && listed[0].name === "a.txt" && listed[0].isDir === false && listed[0].modified, "list fields");
    expect(await sb.files.exists("/workspace/d/a.txt"), "exists");
    await sb.files.write("/tmp/t.txt", "tmp");
    expect((await sb.files.read("/tmp/t.txt")) === "tmp", "/tmp");
    await sb.files.remove("/workspace/d/a.txt");
    return "/workspace, /tmp";
  });
  await check("env.set/get", async () => {
    await sb.env.set("COLOR", "blue");
    expect((await sb.env.get("COLOR")) === "blue", "blue");
    return "blue";
  });
  await check("runCodeStream (SDK receive() bug)", async () => {
    // receive() re-arms one 'message' listener per frame: frames that arrive in the same
    // socket read are dropped, and if 'complete' is among them the iterator never ends.
    const got = [];
    const done = (async () => {
      for await (const m of sb.runCodeStream("print('a'); print('b')")) got.push(m.type);
    })();
    const outcome = await withTimeout(done, 5000);
    const order = ["stdout", "result", "complete"];
    let i = 0;
    for (const t of got) {
      while (i < order.length && order[i] !== t) i++;
      expect(i < order.length, `frames in order, got ${got}`);
    }
    return `${outcome === "__timeout__" ? "hung after" : "ended with"} [${got}]`;
  });
  await check("setTimeout", async () => { await sb.setTimeout(600); return "ok"; });
  await check("pause/resume", async () => {
    await sb.pause();
    await sb.resume();
    return (await sb.getInfo()).status;
  });
  await check("kill", async () => { await sb.kill(); return "deleted"; });
  await check("getInfo after kill", async () => {
    try {
      await sb.getInfo();
    } catch (err) {
      expect(err.name === "SandboxExpiredError", `SandboxExpiredError, got ${err.name}`);
      return err.name;
    }
    throw new Error("no error");
  });
  for (const r of rows) process.stdout.write(JSON.stringify(r) + "\n");
  process.exit(0);
})().catch((err) => {
  for (const r of rows) process.stdout.write(JSON.stringify(r) + "\n");
  process.stdout.write(JSON.stringify({ method: "script", ok: false, result: String(err && err.stack) }) + "\n");
  process.exit(1);
});

// An MCP client (the npm @modelcontextprotocol/sdk) driving countersign's
// tools the way a model would: list them, prepare a payment, wait for the
// human, execute.
//
//   COUNTERSIGN_URL=http://127.0.0.1:8555 COUNTERSIGN_API_KEY=csk_... TO=0x... node mcp_client.mjs
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = (process.env.COUNTERSIGN_URL ?? "http://127.0.0.1:8555").replace(/\/$/, "");
const key = process.env.COUNTERSIGN_API_KEY;
if (!key) throw new Error("set COUNTERSIGN_API_KEY");

const client = new Client({ name: "countersign-example", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url + "/mcp"), {
  requestInit: { headers: { Authorization: `Bearer ${key}` } },
}));

// Tool results are JSON text; tool errors carry "CODE: detail".
async function call(name, args) {
  const res = await client.callTool({ name, arguments: args });
  const text = res.content[0].text;
  if (res.isError) throw new Error(`${name}: ${text}`);
  return JSON.parse(text);
}

const tools = (await client.listTools()).tools.map((t) => t.name);
const prepared = await call("prepare_transaction", {
  type: "native", to_address: process.env.TO, amount: process.env.AMOUNT ?? "1000", memo: "MCP example payment",
});
console.error(`${prepared.transaction_id}: ${prepared.next_step}`);

let status = prepared.status;
const seen = [status];
while (status === "pending") {
  status = (await call("transaction_status", { transaction_id: prepared.transaction_id, wait_seconds: 30 })).status;
  seen.push(status);
}
let executed = null;
if (status === "authorized") {
  executed = await call("execute_transaction", { transaction_id: prepared.transaction_id });
}
await client.close();
console.log(JSON.stringify({ tools, transaction_id: prepared.transaction_id, statuses: seen, executed }));

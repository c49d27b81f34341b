// Interop checks run by the Go tests (not an example): what ethers sees
// when it asks countersign for things it must refuse.
import { ethers } from "ethers";

const url = process.env.COUNTERSIGN_URL.replace(/\/$/, "") + "/eth";
function provider(key) {
  const req = new ethers.FetchRequest(url);
  req.setHeader("X-API-KEY", key);
  return new ethers.JsonRpcProvider(req, undefined, { staticNetwork: true, batchMaxCount: 1 });
}
async function code(p) {
  try { await p; return null; } catch (e) { return e.error?.code ?? e.info?.error?.code ?? e.code; }
}
const mine = provider(process.env.COUNTERSIGN_API_KEY);
const other = provider(process.env.OTHER_API_KEY);
const wallet = (await mine.send("eth_accounts", []))[0];
const otherAccounts = await other.send("eth_accounts", []);
const out = {
  chainId: Number((await mine.getNetwork()).chainId),
  eth_sign: await code(mine.send("eth_sign", [wallet, "0x" + "00".repeat(32)])),
  unknown: await code(mine.send("web3_clientVersion", [])),
  otherSeesWallet: otherAccounts.map((a) => a.toLowerCase()).includes(wallet.toLowerCase()),
  otherSpends: await code(other.send("eth_sendTransaction", [{ from: wallet, to: wallet, value: "0x1" }])),
  otherSigns: await code(other.send("personal_sign", ["0x1234", wallet])),
};
console.log(JSON.stringify(out));

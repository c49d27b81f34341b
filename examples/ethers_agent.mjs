// An agent using ethers v6 against countersign's Ethereum JSON-RPC
// endpoint: countersign is just the provider, and its signer is the agent's
// wallet. Every send and signature waits for a human to approve it.
//
//   COUNTERSIGN_URL=http://127.0.0.1:8555 COUNTERSIGN_API_KEY=csk_... TO=0x... node ethers_agent.mjs
//
// Prints one JSON object: the transaction hash and receipt status, and a
// signed message with the address it recovers to.
import { ethers } from "ethers";

const url = (process.env.COUNTERSIGN_URL ?? "http://127.0.0.1:8555").replace(/\/$/, "");
const key = process.env.COUNTERSIGN_API_KEY;
if (!key) throw new Error("set COUNTERSIGN_API_KEY");

// The API key rides on every JSON-RPC request.
const req = new ethers.FetchRequest(url + "/eth");
req.setHeader("X-API-KEY", key);
req.timeout = 10 * 60 * 1000; // a human may take a while
const provider = new ethers.JsonRpcProvider(req, undefined, { staticNetwork: true });

const signer = await provider.getSigner(); // eth_accounts: the agent's bound wallet
const from = await signer.getAddress();
console.error(`wallet ${from}, balance ${ethers.formatEther(await provider.getBalance(from))} ETH`);

// Sending waits (inside countersign) until the human approves, then returns the hash.
const tx = await signer.sendTransaction({ to: process.env.TO, value: ethers.parseUnits(process.env.AMOUNT_GWEI ?? "1000", "gwei") });
const receipt = await tx.wait();

// personal_sign needs an approval too; anyone can check the signature.
const message = "countersign example " + new Date(0).toISOString();
const signature = await signer.signMessage(message);
const recovered = ethers.verifyMessage(message, signature);

console.log(JSON.stringify({ from, hash: tx.hash, status: receipt.status, block: receipt.blockNumber, message, signature, recovered }));

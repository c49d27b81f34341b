// Interop check run by the Go tests (not an example): the npm siwe package
// parses and verifies a message and signature countersign issued.
import { SiweMessage } from "siwe";
import { ethers } from "ethers";

const msg = new SiweMessage(process.env.MESSAGE);
const res = await msg.verify(
  { signature: process.env.SIGNATURE, domain: process.env.DOMAIN, nonce: process.env.NONCE, time: process.env.TIME },
  { suppressExceptions: true, provider: undefined },
);
console.log(JSON.stringify({ success: res.success, error: res.error?.type ?? null, address: msg.address, chainId: msg.chainId,
  recovered: ethers.verifyMessage(process.env.MESSAGE, process.env.SIGNATURE) }));

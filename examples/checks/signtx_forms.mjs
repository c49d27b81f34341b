// Interop check run by the Go tests (not an example): the unsigned
// transactions ethers produces (unsignedSerialized) for each transaction
// type, and what ethers itself signs for the same fields with the same key,
// so the test can send the first to POST /v1/sign/tx and compare the answer
// with the second byte for byte.
import { ethers } from "ethers";

const wallet = new ethers.Wallet(process.env.SIGNTX_KEY);
const chainId = BigInt(process.env.SIGNTX_CHAIN_ID);
const to = "0x000000000000000000000000000000000000dEaD";
const forms = {
  legacy_eip155: { type: 0, chainId, nonce: 7, gasPrice: 1000000000n, gasLimit: 21000n, to, value: 12345n },
  eip2930: {
    type: 1, chainId, nonce: 8, gasPrice: 2000000000n, gasLimit: 60000n, to, value: 1n, data: "0xdeadbeef",
    accessList: [{ address: to, storageKeys: [ethers.zeroPadValue("0x01", 32)] }],
  },
  eip1559: { type: 2, chainId, nonce: 9, maxPriorityFeePerGas: 1n, maxFeePerGas: 3000000000n, gasLimit: 90000n, to, value: 5n, data: "0x0102" },
  eip1559_create: { type: 2, chainId, nonce: 10, maxPriorityFeePerGas: 1n, maxFeePerGas: 3000000000n, gasLimit: 200000n, to: null, value: 0n, data: "0x6000600055" },
};
const out = { address: wallet.address };
for (const [name, fields] of Object.entries(forms)) {
  out[name] = { unsigned: ethers.Transaction.from(fields).unsignedSerialized, signed: await wallet.signTransaction(fields) };
}
// A legacy transaction without the EIP-155 fields: the server signs it with
// EIP-155 for its own chain, which is what ethers signs given that chain id.
const noChain = { type: 0, nonce: 11, gasPrice: 1000000000n, gasLimit: 21000n, to, value: 2n };
out.legacy_no_chain_id = {
  unsigned: ethers.Transaction.from({ ...noChain, chainId: 0n }).unsignedSerialized,
  signed: await wallet.signTransaction({ ...noChain, chainId }),
};
console.log(JSON.stringify(out));

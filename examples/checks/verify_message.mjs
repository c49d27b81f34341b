// Interop check run by the Go tests (not an example): ethers recovers the
// signer of an EIP-191 message. MESSAGE, SIGNATURE in the environment.
import { ethers } from "ethers";
console.log(JSON.stringify({ recovered: ethers.verifyMessage(process.env.MESSAGE, process.env.SIGNATURE) }));

// Interop checks run by the Go tests (not an example): ethers, an
// independent implementation, checks signatures from the derived-key signer.
//   MESSAGE, SIGNATURE, TYPED (JSON), TYPED_SIGNATURE in the environment.
import { ethers } from "ethers";

const typed = JSON.parse(process.env.TYPED);
const types = { ...typed.types };
delete types.EIP712Domain; // ethers derives the domain type itself
const digest = ethers.TypedDataEncoder.hash(typed.domain, types, typed.message);
console.log(JSON.stringify({
  recovered: ethers.verifyMessage(process.env.MESSAGE, process.env.SIGNATURE),
  typedDigest: digest,
  typedRecovered: ethers.verifyTypedData(typed.domain, types, typed.message, process.env.TYPED_SIGNATURE),
}));

// Interop check run by the Go tests (not an example): ethers decrypts a v3
// keystore countersign wrote, and writes one for countersign to import.
//   KEYSTORE (JSON), PASSWORD in the environment.
import { ethers } from "ethers";

const ours = await ethers.Wallet.fromEncryptedJson(process.env.KEYSTORE, process.env.PASSWORD);
const fresh = ethers.Wallet.createRandom();
const theirs = await ethers.encryptKeystoreJson({ address: fresh.address, privateKey: fresh.privateKey }, process.env.PASSWORD, { scrypt: { N: 1 << 12 } });
console.log(JSON.stringify({ ourAddress: ours.address, theirs, theirAddress: fresh.address, theirKey: fresh.privateKey }));

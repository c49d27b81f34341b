// Cross-check of countersign's x402 client (x402/npm_test.go) with the
// reference implementation, @x402/core and @x402/evm:
//   verify: the reference facilitator's verify accepts countersign's
//           PAYMENT-SIGNATURE header for the requirement;
//   build:  the reference client builds a payment for a PAYMENT-REQUIRED
//           header it encodes; countersign's parsers must accept both.
// Reads one JSON request on stdin, writes one JSON answer on stdout.
import { decodePaymentSignatureHeader, encodePaymentRequiredHeader, encodePaymentSignatureHeader, decodePaymentRequiredHeader } from '@x402/core/http';
import { x402Client } from '@x402/core/client';
import { ExactEvmScheme as ExactClient } from '@x402/evm/exact/client';
import { ExactEvmScheme as ExactFacilitator } from '@x402/evm/exact/facilitator';
import { toClientEvmSigner } from '@x402/evm';
import { privateKeyToAccount } from 'viem/accounts';
import { verifyTypedData } from 'viem';

const input = JSON.parse(await new Promise((resolve) => {
  let s = '';
  process.stdin.on('data', (d) => (s += d));
  process.stdin.on('end', () => resolve(s));
}));

// An offline facilitator signer: signatures checked with viem, the token
// taken to be deployed, the simulation of transferWithAuthorization
// passing (the chain itself is the end-to-end test's job).
const offline = {
  getAddresses: () => ['0x0000000000000000000000000000000000000001'],
  readContract: async () => undefined,
  verifyTypedData: async (args) => verifyTypedData(args),
  writeContract: async () => { throw new Error('offline'); },
  sendTransaction: async () => { throw new Error('offline'); },
  waitForTransactionReceipt: async () => { throw new Error('offline'); },
  getCode: async ({ address }) => (address.toLowerCase() === input.asset?.toLowerCase() ? '0x6080' : '0x'),
};

let out;
if (input.mode === 'verify') {
  const payload = decodePaymentSignatureHeader(input.header);
  const fac = new ExactFacilitator(offline);
  out = await fac.verify(payload, input.requirements);
} else if (input.mode === 'build') {
  const header = encodePaymentRequiredHeader(input.paymentRequired);
  const account = privateKeyToAccount(input.privateKey);
  const client = new x402Client((_, reqs) => reqs[0]).setSpendControls(false).register('eip155:*', new ExactClient(toClientEvmSigner(account)));
  const payment = await client.createPaymentPayload(decodePaymentRequiredHeader(header));
  out = { paymentRequiredHeader: header, paymentSignature: encodePaymentSignatureHeader(payment) };
} else {
  throw new Error('unknown mode ' + input.mode);
}
process.stdout.write(JSON.stringify(out, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));

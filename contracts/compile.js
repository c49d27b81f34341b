// Standard-JSON compile of src/*.sol with fixed settings so the output is
// reproducible: optimizer on (200 runs), EVM version cancun.
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const sources = {};
for (const f of fs.readdirSync('src').filter((f) => f.endsWith('.sol')).sort()) {
  sources[f] = { content: fs.readFileSync(path.join('src', f), 'utf8') };
}
const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
for (const [file, contracts] of Object.entries(out.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    const artifact = {
      contractName: name,
      sourceName: 'src/' + file,
      compiler: 'solc ' + solc.version(),
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
    };
    fs.writeFileSync(path.join('artifacts', name + '.json'), JSON.stringify(artifact, null, 2) + '\n');
    console.log('wrote artifacts/' + name + '.json');
  }
}

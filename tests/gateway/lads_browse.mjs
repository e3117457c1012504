// An independent LADS client (node-opcua): browse the DI DeviceSet of an OPC UA server and print,
// as JSON, each LADS device with its functional units and their functions' values and units.
// Usage: node lads_browse.mjs opc.tcp://127.0.0.1:PORT CERT.pem KEY.pem APPLICATION_URI
import { OPCUAClient, BrowseDirection, NodeClass, AttributeIds } from "node-opcua-client";

const [url, certificateFile, privateKeyFile, applicationUri] = process.argv.slice(2);
const client = OPCUAClient.create({
  endpointMustExist: false,
  connectionStrategy: { maxRetry: 1 },
  certificateFile,
  privateKeyFile,
  applicationUri,
});

async function children(session, nodeId) {
  const result = await session.browse({
    nodeId,
    browseDirection: BrowseDirection.Forward,
    referenceTypeId: "HierarchicalReferences",
    includeSubtypes: true,
    nodeClassMask: NodeClass.Object | NodeClass.Variable,
    resultMask: 63,
  });
  return result.references || [];
}

async function child(session, nodeId, name) {
  return (await children(session, nodeId)).find((r) => r.browseName.name === name);
}

await client.connect(url);
const session = await client.createSession();
const ns = await session.readNamespaceArray();
const lads = ns.indexOf("http://opcfoundation.org/UA/LADS/");
const di = ns.indexOf("http://opcfoundation.org/UA/DI/");
const out = { devices: {} };
const deviceSet = await child(session, "ns=0;i=85", "DeviceSet");
for (const device of await children(session, deviceSet.nodeId)) {
  const unitSet = await child(session, device.nodeId, "FunctionalUnitSet");
  if (!unitSet) continue;
  const units = {};
  for (const unit of await children(session, unitSet.nodeId)) {
    if (unit.browseName.namespaceIndex === 0) continue;
    const functions = {};
    const functionSet = await child(session, unit.nodeId, "FunctionSet");
    for (const fn of functionSet ? await children(session, functionSet.nodeId) : []) {
      const value = (await child(session, fn.nodeId, "SensorValue")) || (await child(session, fn.nodeId, "TargetValue"));
      if (!value) continue;
      const dv = await session.read({ nodeId: value.nodeId, attributeIds: AttributeIds.Value });
      const eu = await child(session, value.nodeId, "EngineeringUnits");
      let unitId = null;
      if (eu) {
        const euValue = await session.read({ nodeId: eu.nodeId, attributeIds: AttributeIds.Value });
        unitId = euValue.value.value ? euValue.value.value.unitId : null;
      }
      functions[fn.browseName.name] = {
        value: dv.value.value,
        status: dv.statusCode.name,
        unitId,
      };
    }
    const state = await child(session, unit.nodeId, "FunctionalUnitState");
    const current = state ? await child(session, state.nodeId, "CurrentState") : null;
    const stateValue = current
      ? (await session.read({ nodeId: current.nodeId, attributeIds: AttributeIds.Value })).value.value.text
      : null;
    units[unit.browseName.name] = { state: stateValue, functions };
  }
  out.devices[device.browseName.name] = { units };
}
out.namespaces = { lads, di };
await session.close();
await client.disconnect();
console.log("LADS-JSON " + JSON.stringify(out));

// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} are CloudFormation Fn::Sub references
/**
 * One IAM role per function (deploy/functions.cjs says what each may do): its own log group,
 * X-Ray, the secrets its environment references, and per function the WebSocket connections of
 * this API and stage, the fanout function, the fan-out failure queue. No action is a wildcard,
 * and no resource leaves the API, region or account open; the only `*` resources are X-Ray's two
 * actions, which take no other.
 *
 * Every function having a role of its own, the framework creates no shared role, and so does not
 * add its `execute-api:ManageConnections` statement on every API of every account
 * (`arn:…:execute-api:*:*:*` then `/@connections/*`; osls compile/events/websockets/lib/api.js).
 */
const { accessOf } = require('./functions.cjs');
const { loadConfigModule } = require('./serverless-config.cjs');

const sub = (text) => ({ 'Fn::Sub': text });
const ACCOUNT = 'arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}';
const arnOf = (service, rest) => sub(`${ACCOUNT.replace('%s', service)}:${rest}`);

/** The logical id of `fn`'s role. */
const roleLogicalId = (naming, fn) => `${naming.getNormalizedFunctionName(fn)}IamRole`;

/** The IAM resources a secret reference is read through. */
function secretResources(reference) {
  const store = loadConfigModule().referenceStore(reference);
  if (store === 'secretsmanager') {
    // GetSecretValue is authorised on the full ARN, which ends with a random suffix; a reference
    // given without it matches the suffixed one.
    return { action: 'secretsmanager:GetSecretValue', resources: [reference, `${reference}-??????`] };
  }
  if (reference.startsWith('arn:')) return { action: 'ssm:GetParameter', resources: [reference] };
  return { action: 'ssm:GetParameter', resources: [arnOf('ssm', `parameter${reference}`)] };
}

/**
 * The role of function `fn`. `context`: `{ stage, deploy, functionName, fanoutFunctionName }`
 * where `deploy` is custom.deploy (deploy/parameters.cjs) and the names are the deployed ones.
 */
function functionRole(fn, { stage, deploy, functionName, fanoutFunctionName }) {
  const access = accessOf(fn);
  const statements = [
    {
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: [arnOf('logs', `log-group:/aws/lambda/${functionName}:*`)],
    },
  ];
  if (deploy.tracing) {
    // X-Ray has no resource-level permissions for these two.
    statements.push({
      Effect: 'Allow',
      Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
      Resource: '*',
    });
  }
  const reads = new Map();
  for (const variable of access.secrets) {
    const reference = deploy.secrets[variable];
    if (!reference) continue;
    const { action, resources } = secretResources(reference);
    reads.set(action, [...(reads.get(action) ?? []), ...resources]);
  }
  for (const [action, resources] of reads)
    statements.push({ Effect: 'Allow', Action: [action], Resource: resources });
  if (reads.size > 0 && deploy.secretsKmsKeyArn) {
    statements.push({
      Effect: 'Allow',
      Action: ['kms:Decrypt'],
      Resource: [deploy.secretsKmsKeyArn],
      Condition: {
        StringEquals: {
          'kms:ViaService': [...reads.keys()]
            .map((action) => `${action.split(':')[0]}.\${AWS::Region}.amazonaws.com`)
            .map((service) => sub(service)),
        },
      },
    });
  }
  if (access.relay) {
    statements.push({
      Effect: 'Allow',
      Action: ['execute-api:ManageConnections'],
      // postToConnection is a POST, closing a connection a DELETE, on this API's stage only.
      Resource: ['POST', 'DELETE'].map((method) =>
        arnOf('execute-api', `\${WebsocketsApi}/${stage}/${method}/@connections/*`),
      ),
    });
  }
  if (access.invokeFanout) {
    statements.push({
      Effect: 'Allow',
      Action: ['lambda:InvokeFunction'],
      // By name: a GetAtt would make the role and the function depend on each other.
      Resource: [arnOf('lambda', `function:${fanoutFunctionName}`)],
    });
  }
  if (access.failureQueue) {
    statements.push({
      Effect: 'Allow',
      Action: ['sqs:SendMessage'],
      Resource: [{ 'Fn::GetAtt': ['FanoutFailureQueue', 'Arn'] }],
    });
  }
  return {
    Type: 'AWS::IAM::Role',
    Properties: {
      Description: `${functionName}: runs the ${fn} function`,
      AssumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: ['lambda.amazonaws.com'] }, Action: ['sts:AssumeRole'] },
        ],
      },
      // In a VPC, Lambda manages the functions' network interfaces with the role's permissions,
      // which EC2 grants on no narrower resource: AWS's own managed policy for exactly that.
      ...(deploy.vpc
        ? {
            ManagedPolicyArns: [
              sub('arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole'),
            ],
          }
        : {}),
      Policies: [
        { PolicyName: `${fn}-${stage}`, PolicyDocument: { Version: '2012-10-17', Statement: statements } },
      ],
    },
  };
}

module.exports = { functionRole, roleLogicalId, secretResources };

/**
 * The deployment's own serverless plugin (serverless.yml `plugins`). With the stage's parameters
 * (custom.deploy, deploy/parameters.cjs) it
 *
 * - before the framework sets up roles: gives every function a role of its own, its reserved
 *   concurrency and, when set, the VPC;
 * - once everything is compiled: writes those roles (deploy/iam.cjs) and keeps in each function's
 *   environment only the secret references its role may read; throttles both APIs and logs the
 *   WebSocket one; bounds the fan-out's retries with a failure queue; runs schema migrations on
 *   every deploy; adds custom domains, alarms and a dashboard (deploy/resources.cjs,
 *   deploy/monitoring.cjs).
 *
 * Functions added to serverless.yml are covered without a change here: each gets a role and
 * the defaults of deploy/functions.cjs.
 */
const { accessOf } = require('./functions.cjs');
const { functionRole, roleLogicalId } = require('./iam.cjs');
const { monitoring } = require('./monitoring.cjs');
const resources = require('./resources.cjs');
const { loadConfigModule } = require('./serverless-config.cjs');

class KubentlyDeployment {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:package:setupProviderConfiguration': () => this.configureFunctions(),
      'before:package:finalize': () => this.completeTemplate(),
    };
  }

  get deploy() {
    return this.serverless.service.custom.deploy;
  }

  get naming() {
    return this.serverless.getProvider('aws').naming;
  }

  functionNames() {
    return this.serverless.service.getAllFunctions();
  }

  configureFunctions() {
    const { service } = this.serverless;
    for (const name of this.functionNames()) {
      const fn = service.getFunction(name);
      fn.role = roleLogicalId(this.naming, name);
      fn.reservedConcurrency ??=
        this.deploy.concurrency[name] ?? this.deploy.concurrency.default ?? accessOf(name).concurrency;
    }
    if (this.deploy.vpc) service.provider.vpc = { ...this.deploy.vpc };
  }

  completeTemplate() {
    const { service } = this.serverless;
    const template = service.provider.compiledCloudFormationTemplate;
    const stage = this.deploy.stage;
    const serviceName = service.service;
    const lib = loadConfigModule();
    const functions = this.functionNames().map((name) => ({
      name,
      logicalId: this.naming.getLambdaLogicalId(name),
      functionName: service.getFunction(name).name,
      timeout: service.getFunction(name).timeout ?? service.provider.timeout,
    }));
    const fanoutFunctionName = service.getFunction('fanout').name;

    for (const f of functions) {
      template.Resources[roleLogicalId(this.naming, f.name)] = functionRole(f.name, {
        stage,
        deploy: this.deploy,
        functionName: f.functionName,
        fanoutFunctionName,
      });
      // A function's environment names only the secrets its role may read.
      const variables = template.Resources[f.logicalId].Properties.Environment?.Variables ?? {};
      const readable = new Set(accessOf(f.name).secrets);
      for (const variable of lib.SECRET_VARIABLES) {
        if (!readable.has(variable)) delete variables[lib.referenceVariable(variable)];
      }
    }

    const context = { service: serviceName, stage, deploy: this.deploy };
    resources.apiStages(template, context);
    resources.authorizerWithoutIdentitySource(template);
    resources.fanoutFailures(template, {
      ...context,
      fanoutLogicalId: this.naming.getLambdaLogicalId('fanout'),
      fanoutRoleLogicalId: roleLogicalId(this.naming, 'fanout'),
    });
    resources.schemaMigrations(template, {
      migrateLogicalId: this.naming.getLambdaLogicalId('migrate'),
      migrateTimeout: functions.find((f) => f.name === 'migrate').timeout,
      functionLogicalIds: functions.map((f) => f.logicalId),
      packagedAt: new Date().toISOString(),
    });
    resources.customDomains(template, context);
    Object.assign(template.Resources, monitoring({ ...context, functions }));
  }
}

module.exports = KubentlyDeployment;

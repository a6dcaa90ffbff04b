// CloudMemory on Azure Container Apps: one environment, the four services as Dapr-enabled
// container apps, and the Dapr components of components/*.yaml restated in the ACA schema.
// The component names and scopes here must match components/*.yaml (checked by
// tests/CloudMemory.Dapr.Tests/Deploy/BicepComponentsTests.cs).

@description('Location of every resource.')
param location string = resourceGroup().location

@description('Prefix of resource names.')
param namePrefix string = 'cloudmemory'

@description('Images are <registry>/cloudmemory-<appId>:<imageTag> (built with deploy/Dockerfile).')
param registry string

@description('Image tag.')
param imageTag string = 'latest'

@description('Registry user (empty: the images are public or pulled without credentials).')
param registryUsername string = ''

@secure()
@description('Registry password.')
param registryPassword string = ''

@description('Redis host and port, e.g. myredis.redis.cache.windows.net:6380 (state store and pub/sub).')
param redisHost string

@secure()
@description('Redis access key.')
param redisPassword string

@description('TLS to Redis (Azure Cache for Redis: true, port 6380).')
param redisEnableTls bool = true

@secure()
@description('PostgreSQL connection string of the durable stores (Npgsql keywords), passed as ConnectionStrings__CloudMemory.')
param postgresConnectionString string

var appIds = [
  'session'
  'context'
  'trace'
  'feedback'
]

var imageNames = {
  session: 'cloudmemory-session'
  context: 'cloudmemory-context'
  trace: 'cloudmemory-trace'
  feedback: 'cloudmemory-feedback'
}

var registrySecrets = empty(registryUsername) ? [] : [
  {
    name: 'registry-password'
    value: registryPassword
  }
]

var registries = empty(registryUsername) ? [] : [
  {
    server: registry
    username: registryUsername
    passwordSecretRef: 'registry-password'
  }
]

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${namePrefix}-env'
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }
}

// components/statestore.yaml: session state and ConversationActor state.
resource statestore 'Microsoft.App/managedEnvironments/daprComponents@2024-03-01' = {
  parent: environment
  name: 'statestore'
  properties: {
    componentType: 'state.redis'
    version: 'v1'
    ignoreErrors: false
    initTimeout: '30s'
    secrets: [
      {
        name: 'redis-password'
        value: redisPassword
      }
    ]
    metadata: [
      {
        name: 'redisHost'
        value: redisHost
      }
      {
        name: 'redisPassword'
        secretRef: 'redis-password'
      }
      {
        name: 'enableTLS'
        value: string(redisEnableTls)
      }
      {
        name: 'actorStateStore'
        value: 'true'
      }
      {
        name: 'keyPrefix'
        value: 'name'
      }
    ]
    scopes: [
      'session'
      'context'
      'trace'
      'feedback'
    ]
  }
}

// components/pubsub.yaml: integration events (turn-written, checkpoint-created, ...).
resource pubsub 'Microsoft.App/managedEnvironments/daprComponents@2024-03-01' = {
  parent: environment
  name: 'pubsub'
  properties: {
    componentType: 'pubsub.redis'
    version: 'v1'
    ignoreErrors: false
    initTimeout: '30s'
    secrets: [
      {
        name: 'redis-password'
        value: redisPassword
      }
    ]
    metadata: [
      {
        name: 'redisHost'
        value: redisHost
      }
      {
        name: 'redisPassword'
        secretRef: 'redis-password'
      }
      {
        name: 'enableTLS'
        value: string(redisEnableTls)
      }
      {
        name: 'redeliverInterval'
        value: '10s'
      }
      {
        name: 'processingTimeout'
        value: '30s'
      }
    ]
    scopes: [
      'session'
      'context'
      'trace'
      'feedback'
    ]
  }
}

resource apps 'Microsoft.App/containerApps@2024-03-01' = [for appId in appIds: {
  name: '${namePrefix}-${appId}'
  location: location
  dependsOn: [
    statestore
    pubsub
  ]
  properties: {
    managedEnvironmentId: environment.id
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: 8080
        transport: 'http'
      }
      dapr: {
        enabled: true
        appId: appId
        appPort: 8080
        appProtocol: 'http'
        enableApiLogging: false
        logLevel: 'info'
      }
      secrets: concat([
        {
          name: 'postgres-connection'
          value: postgresConnectionString
        }
      ], registrySecrets)
      registries: registries
    }
    template: {
      containers: [
        {
          name: appId
          image: '${registry}/${imageNames[appId]}:${imageTag}'
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          env: [
            {
              name: 'CloudMemory__Runtime'
              value: 'Dapr'
            }
            {
              // CloudEvent source; ACA injects DAPR_HTTP_PORT and APP_API_TOKEN itself.
              name: 'APP_ID'
              value: appId
            }
            {
              name: 'ConnectionStrings__CloudMemory'
              secretRef: 'postgres-connection'
            }
          ]
          probes: [
            {
              type: 'Liveness'
              httpGet: {
                path: '/healthz'
                port: 8080
              }
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/readyz'
                port: 8080
              }
            }
          ]
        }
      ]
      scale: {
        minReplicas: 1
        maxReplicas: 3
      }
    }
  }
}]

output environmentId string = environment.id
output appUrls array = [for (appId, i) in appIds: {
  appId: appId
  url: 'https://${apps[i].properties.configuration.ingress.fqdn}'
}]
